import { describe, expect, it } from 'vitest';
import { LruCache } from '../../core/cache/lru';
import { createRestAuthorizer } from '../../core/gateway/handlers';
import { RepeatedAnswers } from '../../core/gateway/repeats';
import type { RouteRule } from '../../core/policy/routes';
import { createRuntime } from '../../functions/runtime';
import { TestClock } from '../support/runtime';
import { API, arn, PURE_ROUTES, ROUTES, world } from './fixtures';
import { mulberry32, pick } from '../support/prng';
import { iamAllows, type PolicyLike } from '../support/iam';

const TTL = 30;
const HEADER_ROUTES = ROUTES; // POST /orgs/{orgId}/deploy reads request.headers["x-approved"]
/** PURE_ROUTES with a condition on the time: allowed before T, denied from T on. */
const timeRoutes = (t: number): RouteRule[] =>
  PURE_ROUTES.map((r) => (r.route === 'GET /orgs/{orgId}/projects/{projectId}' ? { ...r, condition: `now < ${t}` } : r));
/** PURE_ROUTES with project reads needing the delete permission (org viewers lose them). */
const STRICT_ROUTES: RouteRule[] = PURE_ROUTES.map((r) => (r.route === 'GET /orgs/{orgId}/projects/{projectId}' ? { ...r, action: 'delete' } : r));

/** What an IAM answer does with `methodArn`, evaluated as IAM would (an explicit Deny wins). */
function named(answer: PolicyLike, methodArn: string): 'Allow' | 'Deny' {
  return iamAllows(answer, methodArn) ? 'Allow' : 'Deny';
}


/** What a handler made of an event: the whole answer, or the error it threw. */
async function outcome(handler: (e: never) => Promise<unknown>, event: unknown): Promise<string> {
  try {
    return JSON.stringify(await handler(event as never));
  } catch (err) {
    return `throws ${(err as Error).message}`;
  }
}

/**
 * Two containers on one table and one clock: the production wiring, and the same wiring
 * whose `RepeatedAnswers` never keeps anything. Whatever the production container answers
 * from memory must be exactly what it would have decided.
 */
async function twins() {
  const clock = new TestClock();
  const w = await world({ clock, routes: PURE_ROUTES, cacheTtlSeconds: TTL, ttl: false });
  const env = { GATEHOUSE_TABLE: w.rt.tableName, GATEHOUSE_ISSUERS: JSON.stringify([w.idp.config]), GATEHOUSE_CACHE_TTL_SECONDS: String(TTL), GATEHOUSE_LOG_LEVEL: 'error' };
  const plain = createRuntime(env, { client: w.rt.store.db.client, now: clock.now, logSink: () => {} });
  const never = new RepeatedAnswers({ cache: new LruCache({ maxEntries: 1, maxBytes: 1 }), now: clock.now });
  const decided = createRestAuthorizer({ ...plain.gateway, repeats: never });
  return { ...w, clock, decided };
}

/** A world whose policy and alice's roles were read at 0 (a request of hers), the clock now at 25. */
async function readAtZeroThen25() {
  const clock = new TestClock();
  const w = await world({ clock, routes: PURE_ROUTES, cacheTtlSeconds: TTL, ttl: false });
  await w.rest(w.tokenEvent(await w.jwtFor('alice'), 'GET', '/orgs/acme/projects'));
  clock.advance(25);
  return { w, clock };
}

describe('repeated requests answered from memory (RepeatedAnswers)', () => {
  it('differential: under random requests, time, role, token and policy changes, every answer equals the one a container without the memory gives', async () => {
    const w = await twins();
    const { clock, rt } = w;
    const seed = 20261203;
    const next = mulberry32(seed);
    const r = { next, pick: <T,>(xs: readonly T[]) => pick(next, xs) };
    const credentials = [
      await w.jwtFor('alice'),
      await w.jwtFor('bob'),
      await w.jwtFor('root'),
      await w.jwtFor('carol'),
      // Expires 45 s from now (the signer gives an hour from its `now`).
      await w.idp.sign('alice', clock.seconds - 3600 + 45),
      'not.a.jwt',
    ];
    const aliceToken = await w.token({ kind: 'personal', ownerId: 'alice' });
    const shortToken = await w.token({ kind: 'personal', ownerId: 'bob', expiresAt: clock.seconds + 50 });
    credentials.push(aliceToken.credential, shortToken.credential);
    const arns = [
      arn('GET', '/orgs/acme/projects'),
      arn('GET', '/orgs/acme/projects/p1'),
      arn('DELETE', '/orgs/acme/projects/p1'),
      arn('GET', '/orgs/globex/projects/p2'),
      arn('GET', '/users/alice/profile'),
      arn('GET', '/users/bob/profile'),
      arn('GET', '/health'),
      arn('GET', '/admin/a/b'),
      arn('POST', '/orgs/acme/deploy'),
      arn('GET', '/orgs/acme/projects/%2F'),
      arn('GET', '/orgs/acme/projects/*'),
    ];
    let repeats = 0;
    // One phase per kind of policy: decided by the route alone, reading a header, stricter,
    // and reading the time (its condition turns false half-way through the phase).
    const phases: [string, () => RouteRule[]][] = [
      ['pure', () => PURE_ROUTES],
      ['header', () => HEADER_ROUTES],
      ['strict', () => STRICT_ROUTES],
      ['time', () => timeRoutes(clock.seconds + 40)],
    ];
    for (const [phase, routes] of phases) {
      await rt.store.policy.putRoutes(routes(), clock.seconds);
      for (let step = 0; step < 250; step++) {
        const roll = r.next();
        if (roll < 0.08) clock.advance(Math.floor(r.next() * 8));
        else if (roll < 0.1) await rt.store.users.putMembership('acme', 'alice', [r.pick(['org-viewer', 'org-admin', 'org-member'])], clock.seconds);
        else if (roll < 0.103) await rt.store.tokens.revokeToken(aliceToken.id, clock.seconds, 'root');
        else {
          // Most requests from a few hot credentials and routes (alice's JWT and token, bob's JWT;
          // a plain route, one a time condition reads, one a header condition reads): repeats happen.
          const hot = r.next() < 0.7;
          const credential = hot ? credentials[r.pick([0, 1, 6])]! : r.pick(credentials);
          const methodArn = hot ? arns[r.pick([0, 1, 8])]! : r.pick(arns);
          // The scheme spelled several ways: an answer given again is the one decided, however it is written.
          const header = `${r.pick(['Bearer ', 'bearer ', 'BEARER  '])}${credential}`;
          const event = r.next() < 0.5
            ? { type: 'TOKEN', authorizationToken: header, methodArn }
            : { type: 'REQUEST', methodArn, headers: { Authorization: header, 'x-approved': r.pick(['yes', 'no']) } };
          const hitsBefore = rt.caches.repeats.hits;
          const ours = await outcome(w.rest, event);
          repeats += rt.caches.repeats.hits - hitsBefore;
          expect(ours, `seed ${seed}, ${phase} step ${step}: ${JSON.stringify(event).slice(0, 200)}`).toBe(await outcome(w.decided, event));
        }
      }
    }
    // The memory was used (a differential that never repeats proves nothing).
    expect(repeats).toBeGreaterThan(100);
  }, 120_000);

  it('a policy reading a request header is decided every time: the same credential and route with another header gets another answer', async () => {
    const w = await world({ routes: HEADER_ROUTES, ttl: false });
    const bob = await w.jwtFor('bob');
    const event = (approved: string) => ({ type: 'REQUEST' as const, methodArn: arn('POST', '/orgs/acme/deploy'), headers: { authorization: `Bearer ${bob}`, 'x-approved': approved } });
    expect(named(await w.rest(event('yes')), arn('POST', '/orgs/acme/deploy'))).toBe('Allow');
    expect(named(await w.rest(event('no')), arn('POST', '/orgs/acme/deploy'))).toBe('Deny');
    expect(named(await w.rest(event('yes')), arn('POST', '/orgs/acme/deploy'))).toBe('Allow');
    expect(w.rt.caches.repeats.hits).toBe(0);
  });

  it('a policy reading the time is decided every time: an answer allowed before T is not given again at T', async () => {
    const clock = new TestClock();
    const w = await world({ clock, routes: timeRoutes(clock.seconds + 10), ttl: false });
    const alice = await w.jwtFor('alice');
    const ask = async () => named(await w.rest(w.tokenEvent(alice, 'GET', '/orgs/acme/projects/p1')), arn('GET', '/orgs/acme/projects/p1'));
    expect(await ask()).toBe('Allow');
    clock.advance(9);
    expect(await ask()).toBe('Allow');
    clock.advance(1);
    expect(await ask()).toBe('Deny');
  });

  it('an answer is given again only until the policy it was decided with is due for a check, not for a TTL from when it was given', async () => {
    // The policy is read at 0 (alice's request); the auditor's first request, at 25, reads their roles.
    const { w, clock } = await readAtZeroThen25();
    const event = w.tokenEvent(await w.jwtFor('auditor'), 'GET', '/orgs/acme/projects/p1');
    const ask = async () => named(await w.rest(event), event.methodArn);
    // Kept from the second request on.
    for (let i = 0; i < 3; i++) expect(await ask()).toBe('Allow');
    expect(w.rt.caches.repeats.hits).toBe(1);
    // Project reads need the delete permission from 26 (a site viewer has none); at 31 the policy read at 0 is due for a check.
    await w.rt.store.policy.putRoutes(STRICT_ROUTES, clock.seconds + 1);
    clock.advance(6);
    expect(await ask()).toBe('Deny');
  });

  it('a credential first seen late in its user\'s cache life is resolved for what is left of it, not a whole TTL', async () => {
    // alice's roles are read at 0; a new JWT of hers at 25 is resolved from them.
    const { w, clock } = await readAtZeroThen25();
    const later = await w.jwtFor('alice');
    const ask = async (path: string) => named(await w.rest(w.tokenEvent(later, 'GET', path)), arn('GET', path));
    expect(await ask('/orgs/acme/projects/p1')).toBe('Allow');
    // She leaves acme at 26; at 31 the roles read at 0 are out of date, for every route.
    await w.rt.store.users.putMembership('acme', 'alice', [], clock.seconds + 1);
    clock.advance(6);
    expect(await ask('/orgs/acme/projects/p1')).toBe('Deny');
    expect(await ask('/orgs/acme/projects/p2')).toBe('Deny');
  });

  it('an answer is never given again once its JWT expires (the token is verified again, with the clock tolerance)', async () => {
    const clock = new TestClock();
    const w = await world({ clock, routes: PURE_ROUTES, ttl: false });
    const soon = await w.idp.sign('alice', clock.seconds - 3600 + 5);
    const event = w.tokenEvent(soon, 'GET', '/orgs/acme/projects/p1');
    for (let i = 0; i < 3; i++) expect(named(await w.rest(event), event.methodArn)).toBe('Allow');
    expect(w.rt.caches.repeats.hits).toBe(1);
    clock.advance(5);
    expect(named(await w.rest(event), event.methodArn)).toBe('Allow');
    expect(w.rt.caches.repeats.hits).toBe(1);
    clock.advance(30);
    await expect(w.rest(event)).rejects.toThrow('Unauthorized');
  });

  it('a gatehouse token answered again still writes its access log: every denial, and its use', async () => {
    const w = await world({ routes: PURE_ROUTES, ttl: false });
    const t = await w.token({ kind: 'personal', ownerId: 'alice' });
    const denied = w.tokenEvent(t.credential, 'DELETE', '/orgs/acme/projects/p1');
    for (let i = 0; i < 4; i++) expect((await w.rest(denied)).policyDocument.Statement[0]!.Effect).toBe('Deny');
    expect(w.rt.caches.repeats.hits).toBe(2);
    const log = await w.rt.store.tokens.listAccessLog(t.id, { limit: 50 });
    expect(log.items.filter((e) => e.outcome === 'deny')).toHaveLength(4);
    // A use is recorded once per route and minute, whether the answer was decided or repeated:
    // decided twice at 12:01:50 (kept from the second), repeated at 12:02:05.
    const allowed = w.tokenEvent(t.credential, 'GET', '/orgs/acme/projects/p1');
    w.rt.clock.advance(110);
    for (let i = 0; i < 2; i++) expect((await w.rest(allowed)).policyDocument.Statement[0]!.Effect).toBe('Allow');
    w.rt.clock.advance(15);
    expect((await w.rest(allowed)).policyDocument.Statement[0]!.Effect).toBe('Allow');
    expect(w.rt.caches.repeats.hits).toBe(3);
    const uses = (await w.rt.store.tokens.listAccessLog(t.id, { limit: 50 })).items.filter((e) => e.outcome === 'allow');
    expect(uses).toHaveLength(2);
  });

  it('while a candidate is shadowed, every request is decided and compared, repeated or not', async () => {
    const w = await world({ routes: PURE_ROUTES, cacheTtlSeconds: TTL, ttl: false });
    const { policy } = w.rt.store;
    await policy.writeSet(await policy.readSet('default'), { routes: PURE_ROUTES }, w.rt.clock.seconds, 'test');
    await policy.putCandidate(await policy.readCandidate('default'), { routes: STRICT_ROUTES, tests: [] }, w.rt.clock.seconds, 'test');
    w.rt.clock.advance(TTL + 1);
    const alice = await w.jwtFor('alice');
    for (let i = 0; i < 4; i++) expect((await w.rest(w.tokenEvent(alice, 'GET', '/orgs/acme/projects/p1'))).policyDocument.Statement[0]!.Effect).toBe('Allow');
    expect(w.rt.caches.repeats.hits).toBe(0);
    w.rt.clock.advance(61);
    await w.rest(w.tokenEvent(alice, 'GET', '/health'));
    const report = await policy.readShadowReport('default', (await policy.readCandidate('default')).current!);
    expect(report).toMatchObject({ compared: 4, differing: 4 });
  });

  it('keeps an answer from its key\'s second request on: a credential seen once leaves nothing behind', async () => {
    const w = await world({ routes: PURE_ROUTES, ttl: false });
    for (let i = 0; i < 20; i++) await w.rest(w.tokenEvent(await w.jwtFor('alice', { jti: `once-${i}` }), 'GET', '/orgs/acme/projects/p1'));
    expect(w.rt.caches.repeats.size).toBe(0);
    const twice = w.tokenEvent(await w.jwtFor('alice', { jti: 'twice' }), 'GET', '/orgs/acme/projects/p1');
    await w.rest(twice);
    await w.rest(twice);
    expect(w.rt.caches.repeats.size).toBe(1);
  });

  it('logs every repeated answer as a decision, marked repeated; a shared answer cannot be changed by its receiver', async () => {
    const w = await world({ routes: PURE_ROUTES, ttl: false });
    const alice = await w.jwtFor('alice');
    const event = w.tokenEvent(alice, 'GET', '/orgs/acme/projects/p1');
    const first = await w.rest(event);
    // The second answer is the one kept (kept from a key's second request on).
    const again = await w.rest(event);
    expect(again).toEqual(first);
    expect(await w.rest(event)).toBe(again);
    expect(() => {
      again.policyDocument.Statement[0]!.Effect = 'Allow';
      again.policyDocument.Statement.push({ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: [`${API}/*`] });
    }).toThrow(TypeError);
    expect(JSON.stringify(await w.rest(event))).not.toContain(`${API}/*"`);
    const decisions = w.rt.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'authorizer.decision');
    expect(decisions).toHaveLength(4);
    expect(decisions.map((l) => l.repeated ?? false)).toEqual([false, false, true, true]);
    expect(decisions.every((l) => l.effect === 'allow' && l.principalId === 'alice' && l.route === 'GET /orgs/{orgId}/projects/{projectId}')).toBe(true);
  });
});

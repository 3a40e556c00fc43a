import { describe, expect, it } from 'vitest';
import { createRestAuthorizer } from '../../core/gateway/handlers';
import type { RouteRule } from '../../core/policy/routes';
import { createRuntime } from '../../functions/runtime';
import { iamAllows } from '../support/iam';
import { TestClock } from '../support/runtime';
import { arn, effect, PURE_ROUTES, ROUTES, world } from './fixtures';

type World = Awaited<ReturnType<typeof world>>;

let seq = 0;
/** A new, never seen token of `sub`. */
const fresh = (w: World, sub: string, claims: Record<string, unknown> = {}) => w.jwtFor(sub, { jti: `t${++seq}`, ...claims });

/** A REST handler in a container of its own (empty caches, same table and clock): its answer is always computed afresh. */
function freshRest(w: World) {
  const rt = createRuntime({ ...process.env, GATEHOUSE_TABLE: w.rt.tableName, GATEHOUSE_ISSUERS: JSON.stringify([w.idp.config]), GATEHOUSE_LOG_LEVEL: 'error' }, { client: w.rt.store.db.client, now: w.rt.now, logSink: () => {} });
  return createRestAuthorizer(rt.gateway);
}

const decisions = (w: World) => w.rt.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'authorizer.decision');

describe('allow-lists cached per policy, API and what a decision reads of the principal', () => {
  it('answers every principal\'s new tokens exactly as a fresh container would, for every route, from the cache', async () => {
    const w = await world({ routes: PURE_ROUTES });
    await w.rt.store.users.putMembership('acme', 'carol', ['org-member'], w.rt.clock.seconds);
    const principals: [string, Record<string, unknown>][] = [
      ['alice', { email: 'alice@acme.test', email_verified: true }],
      ['alice', {}],
      ['bob', { email: 'bob@acme.test', email_verified: true }],
      ['bob', { email: 'bob@acme.test' }],
      ['carol', {}],
      ['root', {}],
      ['auditor', { groups: ['ops'] }],
      ['stranger', {}],
    ];
    const routes: [string, string][] = [
      ['GET', '/orgs/acme/projects/p1'],
      ['DELETE', '/orgs/acme/projects/p1'],
      ['GET', '/orgs/globex/projects/p1'],
      ['GET', '/orgs/acme/billing'],
      ['GET', '/users/alice/profile'],
      ['GET', '/users/bob/profile'],
      ['GET', '/admin/settings'],
      ['POST', '/reports/r1'],
      ['GET', '/health'],
    ];
    // Every principal primes every route with one token first, so later tokens find their list cached.
    for (const [sub, claims] of principals) for (const [m, p] of routes) await w.rest(w.tokenEvent(await fresh(w, sub, claims), m, p));
    const hits = w.rt.caches.answers.hits;
    const misses = w.rt.caches.answers.misses;
    for (const [sub, claims] of principals) {
      for (const [m, p] of routes) {
        const jwt = await fresh(w, sub, claims);
        const shared = await w.rest(w.tokenEvent(jwt, m, p));
        const decided = await freshRest(w)(w.tokenEvent(jwt, m, p));
        expect(shared, `${sub} ${JSON.stringify(claims)} ${m} ${p}`).toEqual(decided);
      }
    }
    // Every one of those answers came from the cache: the comparison above is not vacuous.
    expect(w.rt.caches.answers.hits - hits).toBe(principals.length * routes.length);
    expect(w.rt.caches.answers.misses).toBe(misses);
  });

  it('shares statements between gatehouse tokens that decide alike (kind, scopes, org, holder), never between others', async () => {
    // Each kind of token twice: the second of a pair is answered from the first's statements,
    // unless the policy reads principal ids (an owner route) and the token is a service (its id is its own).
    const kinds: [string, Parameters<World['token']>[0]][] = [
      ['bob personal', { kind: 'personal', ownerId: 'bob' }],
      ['bob personal read-only', { kind: 'personal', ownerId: 'bob', scopes: ['project:read'] }],
      ['alice personal', { kind: 'personal', ownerId: 'alice' }],
      ['acme org', { kind: 'org', orgId: 'acme' }],
      ['acme org read-only', { kind: 'org', orgId: 'acme', scopes: ['project:read'] }],
      ['globex org', { kind: 'org', orgId: 'globex' }],
      ['site', { kind: 'site' }],
    ];
    const routes: [string, string][] = [['GET', '/orgs/acme/projects/p1'], ['DELETE', '/orgs/acme/projects/p1'], ['GET', '/orgs/globex/projects/p1'], ['GET', '/users/bob/profile'], ['GET', '/admin/settings']];
    for (const table of [PURE_ROUTES, PURE_ROUTES.filter((r) => r.owner === undefined)]) {
      const readsIds = table.some((r) => r.owner !== undefined);
      // TTL off: the test clock is in the past, and DynamoDB Local would delete the tokens as expired.
      const w = await world({ routes: table, ttl: false });
      let expected = 0;
      for (const [name, fields] of kinds) {
        const shares = fields.kind === 'personal' || !readsIds;
        const first = await w.token(fields);
        const second = await w.token(fields);
        await w.rest(w.tokenEvent(first.credential, 'GET', '/health'));
        const misses = w.rt.caches.answers.misses;
        for (const [m, p] of routes) {
          const shared = await w.rest(w.tokenEvent(second.credential, m, p));
          const decided = await freshRest(w)(w.tokenEvent(second.credential, m, p));
          expect(shared, `${name} ${m} ${p}`).toEqual(decided);
        }
        expect(w.rt.caches.answers.misses - misses, `${name}, ids read: ${readsIds}`).toBe(shares ? 0 : 1);
        expected += shares ? 1 : 2;
      }
      // No statements were shared across kinds, scopes, orgs or holders.
      expect(w.rt.caches.answers.misses).toBe(expected);
    }
  });

  it('never answers one principal with another\'s answer', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const path = '/orgs/acme/projects/p1';
    expect(effect(await w.rest(w.tokenEvent(await fresh(w, 'alice'), 'GET', path)))).toBe('Allow');
    // Same route, new tokens of other users: decided for them, not taken from alice.
    const stranger = await w.rest(w.tokenEvent(await fresh(w, 'stranger'), 'GET', path));
    expect(effect(stranger)).toBe('Deny');
    expect(stranger.principalId).toBe('stranger');
    const bob = await w.rest(w.tokenEvent(await fresh(w, 'bob'), 'DELETE', path));
    expect(effect(bob)).toBe('Allow');
    const alice = await w.rest(w.tokenEvent(await fresh(w, 'alice'), 'DELETE', path));
    expect(effect(alice)).toBe('Deny');
    expect(alice.principalId).toBe('alice');
  });

  it('keeps a verified and an unverified email apart (context and conditions)', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const verified = await w.rest(w.tokenEvent(await fresh(w, 'bob', { email: 'bob@acme.test', email_verified: true }), 'GET', '/orgs/acme/billing'));
    expect(effect(verified)).toBe('Allow');
    expect(verified.context?.email).toBe('bob@acme.test');
    const unverified = await w.rest(w.tokenEvent(await fresh(w, 'bob', { email: 'bob@acme.test' }), 'GET', '/orgs/acme/billing'));
    expect(effect(unverified)).toBe('Deny');
    expect(unverified.context?.email).toBeUndefined();
    // A different verified email is a different principal attribute: its own context.
    const other = await w.rest(w.tokenEvent(await fresh(w, 'bob', { email: 'b@acme.test', email_verified: true }), 'GET', '/orgs/acme/billing'));
    expect(other.context?.email).toBe('b@acme.test');
  });

  it('follows each token\'s claims when an expression reads them', async () => {
    const routes: RouteRule[] = [{ route: 'GET /orgs/{orgId}/gold', resource: 'project', action: 'read', org: '{orgId}', condition: 'principal.claims.tier == "gold"' }];
    const w = await world({ routes });
    const ask = async (tier: string) => effect(await w.rest(w.tokenEvent(await fresh(w, 'alice', { tier }), 'GET', '/orgs/acme/gold')));
    expect(await ask('gold')).toBe('Allow');
    expect(await ask('silver')).toBe('Deny');
    expect(await ask('gold')).toBe('Allow');
    expect(await ask('silver')).toBe('Deny');
  });

  it('decides a route whose condition reads request data for the live request only, whatever was cached', async () => {
    const w = await world({ routes: ROUTES });
    const deploy = (jwt: string, approved?: string) => ({ ...w.tokenEvent(jwt, 'POST', '/orgs/acme/deploy'), type: 'REQUEST' as const, headers: { Authorization: `Bearer ${jwt}`, ...(approved ? { 'x-approved': approved } : {}) } });
    for (let i = 0; i < 2; i++) {
      expect(effect(await w.rest(deploy(await fresh(w, 'bob'), 'yes')))).toBe('Allow');
      const denied = await w.rest(deploy(await fresh(w, 'bob')));
      expect(effect(denied)).toBe('Deny');
      // Nor does any other answer cover it: the route is not in a cached list.
      const other = await w.rest(w.tokenEvent(await fresh(w, 'bob'), 'GET', '/orgs/acme/projects'));
      expect(iamAllows(other, arn('POST', '/orgs/acme/deploy'))).toBe(false);
    }
  });

  it('follows each token when an expression reads the credential itself (the identity source)', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const chosen = await fresh(w, 'alice');
    const other = await fresh(w, 'alice');
    const routes: RouteRule[] = [
      { route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}', condition: `request.headers.authorization == "Bearer ${chosen}"` },
      ...PURE_ROUTES.filter((r) => r.route !== 'GET /orgs/{orgId}/projects'),
    ];
    await w.rt.store.policy.putRoutes(routes, w.rt.clock.seconds);
    w.rt.policies.invalidate();
    const list = arn('GET', '/orgs/acme/projects');
    for (let i = 0; i < 2; i++) {
      // Each token's answer from another route covers the list route exactly when the token is the chosen one.
      expect(iamAllows(await w.rest(w.tokenEvent(chosen, 'GET', '/orgs/acme/projects/p1')), list)).toBe(true);
      expect(iamAllows(await w.rest(w.tokenEvent(other, 'GET', '/orgs/acme/projects/p1')), list)).toBe(false);
      expect(effect(await w.rest(w.tokenEvent(other, 'GET', '/orgs/acme/projects')))).toBe('Deny');
      expect(effect(await w.rest(w.tokenEvent(chosen, 'GET', '/orgs/acme/projects')))).toBe('Allow');
    }
  });

  it('decides every use of a gatehouse token (each reaches the access log)', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const t = await w.token({ kind: 'personal', ownerId: 'alice' });
    for (let i = 0; i < 3; i++) expect(effect(await w.rest(w.tokenEvent(t.credential, 'GET', '/orgs/acme/projects/p1')))).toBe('Allow');
    expect(decisions(w).filter((l) => l.tokenId === t.id)).toHaveLength(3);
  });

  it('sees a role change once the user cache expires, and a policy change once the policy is checked again', async () => {
    const clock = new TestClock();
    const w = await world({ routes: PURE_ROUTES, clock, cacheTtlSeconds: 5 });
    const path = '/orgs/acme/projects/p1';
    expect(effect(await w.rest(w.tokenEvent(await fresh(w, 'alice'), 'DELETE', path)))).toBe('Deny');
    await w.rt.store.users.putMembership('acme', 'alice', ['org-admin'], clock.seconds);
    clock.advance(6);
    expect(effect(await w.rest(w.tokenEvent(await fresh(w, 'alice'), 'DELETE', path)))).toBe('Allow');
    // The route disappears from the policy: a new token gets the new policy's answer.
    await w.rt.store.policy.putRoutes(PURE_ROUTES.filter((r) => r.route !== 'DELETE /orgs/{orgId}/projects/{projectId}'), clock.seconds);
    clock.advance(6);
    const after = await w.rest(w.tokenEvent(await fresh(w, 'alice'), 'DELETE', path));
    expect(effect(after)).toBe('Deny');
    expect(iamAllows(after, arn('DELETE', path))).toBe(false);
  });

});

import { describe, expect, it } from 'vitest';
import { createHttpAuthorizer, createRestAuthorizer } from '../../core/gateway/handlers';
import type { RouteRule } from '../../core/policy/routes';
import { iamAllows } from '../support/iam';
import { TestClock } from '../support/runtime';
import { arn, effect, PURE_ROUTES, world } from './fixtures';

type World = Awaited<ReturnType<typeof world>>;

let seq = 0;
/** A new, never seen token of `sub` (a fresh jti: the memo of raw credentials never answers it). */
const fresh = (w: World, sub: string, claims: Record<string, unknown> = {}) => w.jwtFor(sub, { jti: `t${++seq}`, ...claims });

/** Decision log lines marked as answered from a shared answer. */
const sharedLogs = (w: World) => w.rt.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'authorizer.decision' && l.shared === true);

/** A REST handler with empty caches of its own: its answer is always a fresh decision. */
const freshRest = (w: World) => createRestAuthorizer({ authorizer: w.rt.authorizer, logger: w.rt.logger, now: w.rt.now, cacheTtlSeconds: w.rt.settings.cacheTtlSeconds });


describe('answers shared by the tokens of one principal', () => {
  it('answers a known user\'s new token exactly as a fresh decision would, for every principal and route', async () => {
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
    // Every principal primes every route with one token first, so later tokens can be shared.
    for (const [sub, claims] of principals) for (const [m, p] of routes) await w.rest(w.tokenEvent(await fresh(w, sub, claims), m, p));
    const before = sharedLogs(w).length;
    for (const [sub, claims] of principals) {
      for (const [m, p] of routes) {
        const jwt = await fresh(w, sub, claims);
        const shared = await w.rest(w.tokenEvent(jwt, m, p));
        const decided = await freshRest(w)(w.tokenEvent(jwt, m, p));
        expect(shared, `${sub} ${JSON.stringify(claims)} ${m} ${p}`).toEqual(decided);
      }
    }
    // Every one of those answers came from a shared answer: the comparison above is not vacuous.
    expect(sharedLogs(w).length - before).toBe(principals.length * routes.length);
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

  it('is not used when the policy reads request data or time', async () => {
    for (const condition of ['request.headers["x-approved"] == "yes"', 'now > 0', 'request.query.debug != "1"']) {
      const routes: RouteRule[] = [{ route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}', condition }];
      const w = await world({ routes });
      for (let i = 0; i < 3; i++) await w.rest(w.tokenEvent(await fresh(w, 'alice'), 'GET', '/orgs/acme/projects'));
      expect(sharedLogs(w), condition).toEqual([]);
    }
  });

  it('is not used when an expression reads the credential itself', async () => {
    const routes: RouteRule[] = [{ route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}', condition: 'request.headers.authorization != ""' }];
    const w = await world({ routes });
    for (let i = 0; i < 3; i++) await w.rest(w.tokenEvent(await fresh(w, 'alice'), 'GET', '/orgs/acme/projects'));
    expect(sharedLogs(w)).toEqual([]);
  });

  it('never answers gatehouse tokens from a shared answer (every use reaches the access log)', async () => {
    const w = await world({ routes: PURE_ROUTES });
    for (let i = 0; i < 3; i++) {
      const t = await w.token({ kind: 'personal', ownerId: 'alice' });
      expect(effect(await w.rest(w.tokenEvent(t.credential, 'GET', '/orgs/acme/projects/p1')))).toBe('Allow');
    }
    expect(sharedLogs(w)).toEqual([]);
  });

  it('logs a shared answer like a decision: effect, reason, route, principal, policy version', async () => {
    const w = await world({ routes: PURE_ROUTES });
    await w.rest(w.tokenEvent(await fresh(w, 'alice'), 'DELETE', '/orgs/acme/projects/p1'));
    await w.rest(w.tokenEvent(await fresh(w, 'alice'), 'DELETE', '/orgs/acme/projects/p1'));
    const [line] = sharedLogs(w);
    expect(line).toMatchObject({ level: 'INFO', effect: 'deny', reason: 'no-permission', route: 'DELETE /orgs/{orgId}/projects/{projectId}', principalId: 'alice', apiId: 'api123', method: 'DELETE', path: '/orgs/acme/projects/p1' });
    expect(typeof line!.policyVersion).toBe('string');
    expect(JSON.stringify(line)).not.toMatch(/eyJ/);
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

  it('shares HTTP API answers within their own shape (simple and IAM)', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const event = (jwt: string) => ({
      version: '2.0',
      type: 'REQUEST',
      routeArn: arn('GET', '/orgs/acme/projects/p1'),
      routeKey: 'GET /orgs/{orgId}/projects/{projectId}',
      rawPath: '/orgs/acme/projects/p1',
      headers: { authorization: `Bearer ${jwt}` },
      requestContext: { http: { method: 'GET', path: '/orgs/acme/projects/p1', sourceIp: '203.0.113.9' }, stage: 'prod' },
    });
    const simple = createHttpAuthorizer({ authorizer: w.rt.authorizer, logger: w.rt.logger, now: w.rt.now, mode: 'simple' });
    const iam = createHttpAuthorizer({ authorizer: w.rt.authorizer, logger: w.rt.logger, now: w.rt.now, mode: 'iam' });
    const s1 = await simple(event(await fresh(w, 'alice')));
    const s2 = await simple(event(await fresh(w, 'alice')));
    expect(s1).toMatchObject({ isAuthorized: true });
    expect(s2).toEqual(s1);
    const i1 = await iam(event(await fresh(w, 'alice')));
    const i2 = await iam(event(await fresh(w, 'alice')));
    expect(i1).toHaveProperty('policyDocument');
    expect(i2).toEqual(i1);
    expect(sharedLogs(w).length).toBe(2);
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { iamAllows } from '../support/iam';
import { TestClock } from '../support/runtime';
import { compileRouteTable } from '../../core/policy/routes';
import { API, arn, ROUTES, world } from './fixtures';

const table = compileRouteTable(ROUTES);

type World = Awaited<ReturnType<typeof world>>;

async function expectUnauthorized(p: Promise<unknown>) {
  await expect(p).rejects.toThrow(/^Unauthorized$/);
}

describe('REST TOKEN authorizer: decisions', () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  });

  it('allows an org viewer to read a project in its org, with a flat context', async () => {
    const jwt = await w.jwtFor('alice', { email: 'alice@acme.test', email_verified: true });
    const res = await w.rest(w.tokenEvent(jwt, 'GET', '/orgs/acme/projects/p1'));
    expect(res.principalId).toBe('alice');
    expect(res.policyDocument.Statement[0]!.Effect).toBe('Allow');
    expect(iamAllows(res, arn('GET', '/orgs/acme/projects/p1'))).toBe(true);
    expect(res.context).toMatchObject({ principalId: 'alice', userId: 'alice', kind: 'user', orgIds: 'acme', email: 'alice@acme.test' });
    for (const v of Object.values(res.context ?? {})) expect(['string', 'number', 'boolean']).toContain(typeof v);
  });

  it('never puts an unverified email in the context', async () => {
    const jwt = await w.jwtFor('alice', { email: 'ceo@acme.test', email_verified: 'true' });
    const res = await w.rest(w.tokenEvent(jwt, 'GET', '/orgs/acme/projects/p1'));
    expect(res.context?.email).toBeUndefined();
  });

  it('denies explicitly (403) what the role does not allow: the current ARN first, then only carved-out patterns', async () => {
    const jwt = await w.jwtFor('alice');
    const res = await w.rest(w.tokenEvent(jwt, 'DELETE', '/orgs/acme/projects/p1'));
    const denied = res.policyDocument.Statement[0]!;
    expect(denied).toMatchObject({ Action: 'execute-api:Invoke', Effect: 'Deny' });
    expect(denied.Resource[0]).toBe(arn('DELETE', '/orgs/acme/projects/p1'));
    // Every other Deny is a pattern (a carve-out), never another concrete route.
    for (const r of denied.Resource.slice(1)) expect(r).toContain('*');
    expect(iamAllows(res, arn('DELETE', '/orgs/acme/projects/p1'))).toBe(false);
    // The cached Deny does not block what alice may do.
    expect(iamAllows(res, arn('GET', '/orgs/acme/projects'))).toBe(true);
    expect(iamAllows(res, arn('GET', '/users/alice/profile'))).toBe(true);
    expect(iamAllows(res, arn('DELETE', '/orgs/acme/projects/p2'))).toBe(false);
  });

  it('denies non-members and unknown routes', async () => {
    const jwt = await w.jwtFor('alice');
    for (const [m, p] of [['GET', '/orgs/globex/projects/p1'], ['GET', '/nowhere'], ['PATCH', '/orgs/acme/projects/p1']] as const) {
      const res = await w.rest(w.tokenEvent(jwt, m, p));
      expect(res.policyDocument.Statement[0]!.Effect, `${m} ${p}`).toBe('Deny');
    }
  });

  it('lets a site admin in anywhere, with compact wildcards', async () => {
    const jwt = await w.jwtFor('root');
    const res = await w.rest(w.tokenEvent(jwt, 'DELETE', '/orgs/globex/projects/p9'));
    expect(res.policyDocument.Statement[0]!.Effect).toBe('Allow');
    expect(iamAllows(res, arn('GET', '/orgs/any-org/projects/x/secrets'))).toBe(true);
  });

  it('evaluates route conditions: verified email for billing', async () => {
    const bob = await w.jwtFor('bob', { email: 'bob@acme.test', email_verified: true });
    const bobUnverified = await w.jwtFor('bob', { email: 'bob@acme.test' });
    expect((await w.rest(w.tokenEvent(bob, 'GET', '/orgs/acme/billing'))).policyDocument.Statement[0]!.Effect).toBe('Allow');
    expect((await w.rest(w.tokenEvent(bobUnverified, 'GET', '/orgs/acme/billing'))).policyDocument.Statement[0]!.Effect).toBe('Deny');
  });

  it('binds owner routes to the caller only', async () => {
    const jwt = await w.jwtFor('alice');
    expect((await w.rest(w.tokenEvent(jwt, 'GET', '/users/alice/profile'))).policyDocument.Statement[0]!.Effect).toBe('Allow');
    expect((await w.rest(w.tokenEvent(jwt, 'GET', '/users/bob/profile'))).policyDocument.Statement[0]!.Effect).toBe('Deny');
  });

  it('public routes allow any valid principal but still refuse bad credentials', async () => {
    const jwt = await w.jwtFor('nobody');
    expect((await w.rest(w.tokenEvent(jwt, 'GET', '/health'))).policyDocument.Statement[0]!.Effect).toBe('Allow');
    await expectUnauthorized(w.rest(w.tokenEvent('garbage.jwt.here', 'GET', '/health')));
  });
});

describe('REST authorizer: 401 for every bad credential', () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  });

  it.each([
    ['missing', undefined], ['empty', ''], ['no scheme', 'abc'], ['basic', 'Basic dXNlcjpwYXNz'], ['two credentials', 'Bearer a b'],
    ['junk jwt', 'Bearer a.b.c'], ['malformed gat', 'Bearer gat_short'], ['non-string', 42],
  ])('%s', async (_name, value) => {
    await expectUnauthorized(w.rest({ type: 'TOKEN', authorizationToken: value, methodArn: arn('GET', '/orgs/acme/projects') } as never));
  });

  it('a JWT from an untrusted issuer', async () => {
    const { makeIssuer } = await import('../support/jwt');
    const evil = await makeIssuer({ issuer: 'https://evil.test/' });
    const jwt = await evil.sign('root', w.rt.clock.seconds);
    await expectUnauthorized(w.rest(w.tokenEvent(jwt, 'GET', '/health')));
  });

  it('a JWT signed by the wrong key for the trusted issuer', async () => {
    const { makeIssuer } = await import('../support/jwt');
    const forger = await makeIssuer();
    const jwt = await forger.sign('root', w.rt.clock.seconds);
    await expectUnauthorized(w.rest(w.tokenEvent(jwt, 'GET', '/health')));
  });

  it('REQUEST events: one Authorization header in any case, never two', async () => {
    const jwt = await w.jwtFor('alice');
    const base = { type: 'REQUEST' as const, methodArn: arn('GET', '/orgs/acme/projects'), requestContext: { identity: { sourceIp: '198.51.100.1' } } };
    const ok = await w.rest({ ...base, headers: { AUTHORIZATION: `bearer ${jwt}` } });
    expect(ok.policyDocument.Statement[0]!.Effect).toBe('Allow');
    await expectUnauthorized(w.rest({ ...base, headers: { Authorization: `Bearer ${jwt}`, authorization: `Bearer ${jwt}` } }));
    await expectUnauthorized(w.rest({ ...base, headers: { authorization: `Bearer ${jwt}` }, multiValueHeaders: { authorization: [`Bearer ${jwt}`, `Bearer ${jwt}`] } }));
    await expectUnauthorized(w.rest({ ...base, headers: {} }));
    await expectUnauthorized(w.rest({ ...base, headers: null }));
  });

  it('logs a reason code for every 401 and never the credential', async () => {
    const jwt = await w.jwtFor('alice');
    const before = w.rt.logs.length;
    await expectUnauthorized(w.rest(w.tokenEvent(jwt + 'x', 'GET', '/health')));
    const lines = w.rt.logs.slice(before);
    expect(lines.some((l) => JSON.parse(l).reason?.startsWith('jwt-'))).toBe(true);
    for (const l of w.rt.logs) {
      expect(l).not.toContain(jwt.slice(0, 40));
      expect(l).not.toContain(jwt.split('.')[2]!);
    }
  });

  it('a malformed methodArn is a failure, never an Allow', async () => {
    const jwt = await w.jwtFor('root');
    for (const bad of ['', 'arn:aws:s3:::bucket', 'nonsense', `${API}`]) {
      await expect(w.rest({ type: 'TOKEN', authorizationToken: `Bearer ${jwt}`, methodArn: bad })).rejects.toThrow();
    }
  });
});

describe('cached-policy correctness', () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  });

  // Requests on routes that exist, with various bindings.
  const probes: [string, string][] = [];
  for (const org of ['acme', 'globex', 'initech']) {
    probes.push(['GET', `/orgs/${org}/projects`], ['GET', `/orgs/${org}/projects/p1`], ['DELETE', `/orgs/${org}/projects/p1`],
      ['GET', `/orgs/${org}/projects/p2/secrets`], ['GET', `/orgs/${org}/billing`]);
  }
  for (const u of ['alice', 'bob', 'root']) probes.push(['GET', `/users/${u}/profile`]);
  probes.push(['GET', '/health'], ['GET', '/admin/a/b'], ['GET', '/reports/r1'], ['POST', '/reports/r1']);

  for (const who of ['alice', 'bob', 'root', 'auditor', 'stranger']) {
    it(`a cached answer for ${who} is right on every other route, both ways`, async () => {
      const jwt = await w.jwtFor(who, { email: `${who}@x.test`, email_verified: true });
      const omitted = new Set<string>();
      for (const [m0, p0] of probes) {
        const before = w.rt.logs.length;
        const cached = await w.rest(w.tokenEvent(jwt, m0, p0));
        for (const line of w.rt.logs.slice(before).map((l) => JSON.parse(l))) if (line.message === 'authorizer.entitlements-omitted') for (const r of line.routes) omitted.add(r);
        for (const [m, p] of probes) {
          const fresh = await w.rest(w.tokenEvent(jwt, m, p));
          const freshAllows = iamAllows(fresh, arn(m, p));
          const cachedAllows = iamAllows(cached, arn(m, p));
          // A cache hit may never allow what a fresh decision denies...
          if (!freshAllows) expect(cachedAllows, `${who}: cached from ${m0} ${p0} allowed ${m} ${p}`).toBe(false);
          // ...and whatever the first answer was (Allow or Deny), it covers every route the
          // principal may use, except the ones it reports as left out (IAM cannot list
          // `/projects/{projectId}` for who also holds `/projects/{projectId}/secrets`
          // without allowing `/projects/x/anything`, which a fresh decision refuses).
          const route = table.match(m, p)?.rule.route;
          if (freshAllows && !(route && omitted.has(route))) expect(cachedAllows, `${who}: cached from ${m0} ${p0} blocked ${m} ${p}`).toBe(true);
        }
      }
      // Left out is the exception: only the nested project routes, never the table.
      expect([...omitted].filter((r) => !r.startsWith('GET /orgs/{orgId}/projects/{projectId}'))).toEqual([]);
    });
  }

  it('routes whose condition reads request data are never granted from cache', async () => {
    const bob = await w.jwtFor('bob');
    const res = await w.rest({ type: 'REQUEST', methodArn: arn('GET', '/orgs/acme/projects'), headers: { authorization: `Bearer ${bob}`, 'x-approved': 'yes' } });
    expect(iamAllows(res, arn('POST', '/orgs/acme/deploy'))).toBe(false);
    const deploy = await w.rest({ type: 'REQUEST', methodArn: arn('POST', '/orgs/acme/deploy'), headers: { authorization: `Bearer ${bob}`, 'x-approved': 'yes' } });
    expect(iamAllows(deploy, arn('POST', '/orgs/acme/deploy'))).toBe(true);
    const noHeader = await w.rest({ type: 'REQUEST', methodArn: arn('POST', '/orgs/acme/deploy'), headers: { authorization: `Bearer ${bob}` } });
    expect(iamAllows(noHeader, arn('POST', '/orgs/acme/deploy'))).toBe(false);
  });

  it('ids that could widen an ARN are never written into one', async () => {
    const now = w.rt.clock.seconds;
    await w.rt.store.users.putMembership('a*b', 'mallory', ['org-admin'], now);
    await w.rt.store.users.putMembership('x/y', 'mallory', ['org-admin'], now);
    const jwt = await w.jwtFor('mallory');
    const res = await w.rest(w.tokenEvent(jwt, 'GET', '/health'));
    const resources = res.policyDocument.Statement.flatMap((s) => s.Resource);
    for (const r of resources) expect(r).not.toMatch(/a\*b|x\/y/);
    expect(iamAllows(res, arn('GET', '/orgs/acme/projects'))).toBe(false);
  });
});

describe('policy propagation and revocation bounds', () => {
  it('a route change reaches a warm authorizer within the cache TTL', async () => {
    const clock = new TestClock();
    const w = await world({ clock, cacheTtlSeconds: 30 });
    const jwt = await w.jwtFor('alice');
    expect((await w.rest(w.tokenEvent(jwt, 'GET', '/health'))).policyDocument.Statement[0]!.Effect).toBe('Allow');
    await w.rt.store.policy.putRoutes([{ route: 'GET /health', resource: 'health', action: 'read' }], clock.seconds);
    clock.advance(31);
    const after = await w.rest(w.tokenEvent(await w.jwtFor('alice'), 'GET', '/health'));
    expect(after.policyDocument.Statement[0]!.Effect).toBe('Deny');
  });

  it('a demoted member loses access within the cache TTL', async () => {
    const clock = new TestClock();
    const w = await world({ clock, cacheTtlSeconds: 30 });
    const jwt = await w.jwtFor('bob');
    expect((await w.rest(w.tokenEvent(jwt, 'DELETE', '/orgs/acme/projects/p1'))).policyDocument.Statement[0]!.Effect).toBe('Allow');
    await w.rt.store.users.putMembership('acme', 'bob', ['org-viewer'], clock.seconds);
    clock.advance(31);
    const res = await w.rest(w.tokenEvent(await w.jwtFor('bob'), 'DELETE', '/orgs/acme/projects/p1'));
    expect(res.policyDocument.Statement[0]!.Effect).toBe('Deny');
  });
});

describe('in-Lambda answer memo', () => {
  it('never serves an answer past the JWT exp, even within the cache TTL', async () => {
    const clock = new TestClock();
    const w = await world({ clock, cacheTtlSeconds: 300 });
    const short = await w.idp.sign('alice', clock.seconds); // valid one hour
    const ev = w.tokenEvent(short, 'GET', '/orgs/acme/projects');
    expect((await w.rest(ev)).policyDocument.Statement[0]!.Effect).toBe('Allow');
    clock.advance(3599);
    expect((await w.rest(ev)).policyDocument.Statement[0]!.Effect).toBe('Allow');
    clock.advance(2 + 30); // past exp and the issuer's clock tolerance
    await expect(w.rest(ev)).rejects.toThrow(/^Unauthorized$/);
  });

  it('time-dependent conditions are decided afresh every time', async () => {
    const clock = new TestClock();
    const until = clock.seconds + 10;
    const w = await world({ clock, cacheTtlSeconds: 300, routes: [{ route: 'GET /promo', resource: 'promo', action: 'read', public: true, condition: `now < ${until}` }] });
    const jwt = await w.jwtFor('alice');
    const ev = w.tokenEvent(jwt, 'GET', '/promo');
    expect((await w.rest(ev)).policyDocument.Statement[0]!.Effect).toBe('Allow');
    clock.advance(11);
    expect((await w.rest(ev)).policyDocument.Statement[0]!.Effect).toBe('Deny');
  });

  it('a remembered answer is not shared across credentials or routes', async () => {
    const w = await world();
    const alice = await w.jwtFor('alice');
    const bob = await w.jwtFor('bob');
    expect((await w.rest(w.tokenEvent(bob, 'DELETE', '/orgs/acme/projects/p1'))).policyDocument.Statement[0]!.Effect).toBe('Allow');
    expect((await w.rest(w.tokenEvent(alice, 'DELETE', '/orgs/acme/projects/p1'))).policyDocument.Statement[0]!.Effect).toBe('Deny');
    expect((await w.rest(w.tokenEvent(bob, 'DELETE', '/orgs/globex/projects/p1'))).policyDocument.Statement[0]!.Effect).toBe('Deny');
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { createRestAuthorizer } from '../../core/gateway/handlers';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import { httpEvent, tokenContext, userContext } from '../support/events';
import { TestClock } from '../support/runtime';
import { adminWorld } from './admin-support';

type W = Awaited<ReturnType<typeof adminWorld>>;
const ROUTES = [
  { route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'read', org: '{orgId}' },
  { route: 'DELETE /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'delete', org: '{orgId}' },
  { route: 'POST /orgs/{orgId}/deploy', resource: 'deployment', action: 'create', org: '{orgId}', condition: 'request.headers["x-approved"] == "yes"' },
  { route: 'GET /orgs/{orgId}/billing', resource: 'billing', action: 'read', org: '{orgId}', condition: 'principal.emailVerified == true' },
];

describe('organizations and members', () => {
  let w: W;
  beforeAll(async () => {
    w = await adminWorld();
  });

  it('site admins create orgs and become org-admin; others may not', async () => {
    const res = await w.call(httpEvent('POST', '/orgs', { body: { id: 'initech', name: 'Initech' }, context: userContext('root') }));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: 'initech', name: 'Initech', createdBy: 'root' });
    expect((await w.rt.store.users.loadUser('root')).orgs.initech).toEqual(['org-admin']);
    expect((await w.call(httpEvent('POST', '/orgs', { body: { id: 'initech', name: 'Again' }, context: userContext('root') }))).status).toBe(409);
    expect((await w.call(httpEvent('POST', '/orgs', { body: { name: 'Mine' }, context: userContext('ada') }))).status).toBe(403);
    const gen = await w.call(httpEvent('POST', '/orgs', { body: { name: 'Umbrella Corp' }, context: userContext('root') }));
    expect(gen.body.id).toMatch(/^umbrella-corp-[0-9a-f]{6}$/);
    for (const body of [{ id: 'Bad Id', name: 'x' }, { name: '' }, { name: 'x', extra: 1 }, { id: 'a', name: 'x' }]) {
      expect((await w.call(httpEvent('POST', '/orgs', { body, context: userContext('root') }))).status, JSON.stringify(body)).toBe(400);
    }
  });

  it('GET /orgs: mine for members, all for site-level readers; GET /orgs/{id} hides others', async () => {
    expect((await w.call(httpEvent('GET', '/orgs', { context: userContext('ada') }))).body.items.map((o: { id: string }) => o.id)).toEqual(['acme']);
    const all = (await w.call(httpEvent('GET', '/orgs', { context: userContext('auditor') }))).body.items.map((o: { id: string }) => o.id);
    expect(all).toEqual(expect.arrayContaining(['acme', 'globex', 'initech']));
    expect((await w.call(httpEvent('GET', '/orgs/acme', { context: userContext('mo') }))).status).toBe(200);
    expect((await w.call(httpEvent('GET', '/orgs/globex', { context: userContext('mo') }))).status).toBe(404);
    expect((await w.call(httpEvent('GET', '/orgs/nope', { context: userContext('root') }))).status).toBe(404);
    expect((await w.call(httpEvent('GET', '/orgs/%2e%2e', { context: userContext('root') }))).status).toBe(404);
  });

  it('lists members with pagination for those allowed', async () => {
    for (let i = 0; i < 5; i++) await w.call(httpEvent('PUT', `/orgs/acme/members/m${i}`, { body: { roles: ['org-member'] }, context: userContext('ada') }));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await w.call(httpEvent('GET', '/orgs/acme/members', { context: userContext('vic'), query: { limit: '3', ...(cursor ? { cursor } : {}) } }));
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((m: { userId: string }) => m.userId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(expect.arrayContaining(['ada', 'mo', 'vic', 'm0', 'm4']));
    expect(new Set(seen).size).toBe(seen.length);
    expect((await w.call(httpEvent('GET', '/orgs/acme/members', { context: userContext('mo') }))).status).toBe(403);
    expect((await w.call(httpEvent('GET', '/orgs/acme/members', { context: userContext('gus') }))).status).toBe(404);
  });

  it('members can leave; odd user ids are 404; changing roles returns 200', async () => {
    expect((await w.call(httpEvent('PUT', '/orgs/acme/members/m0', { body: { roles: ['org-viewer'] }, context: userContext('ada') }))).status).toBe(200);
    expect((await w.call(httpEvent('DELETE', '/orgs/acme/members/m1', { context: userContext('m1') }))).status).toBe(204);
    expect((await w.call(httpEvent('DELETE', '/orgs/acme/members/m1', { context: userContext('ada') }))).status).toBe(404);
    expect((await w.call(httpEvent('PUT', '/orgs/acme/members/a%20b', { body: { roles: [] }, context: userContext('ada') }))).status).toBe(404);
  });

  it('GET /me shows the principal, roles and token scopes', async () => {
    const me = await w.call(httpEvent('GET', '/me', { context: userContext('ada', 'ada@acme.test') }));
    expect(me.body).toMatchObject({ id: 'ada', kind: 'user', siteRoles: [], orgs: [{ id: 'acme', roles: ['org-admin'] }], email: 'ada@acme.test' });
    const t = generateToken();
    await w.rt.store.tokens.createToken({ id: t.id, kind: 'org', orgId: 'acme', name: 'svc', scopes: ['project:read'], secretHash: hashSecret(t.secret), createdAt: w.rt.clock.seconds, expiresAt: w.rt.clock.seconds + 100 });
    const tme = await w.call(httpEvent('GET', '/me', { context: tokenContext(t.id, `token:${t.id}`) }));
    expect(tme.body).toMatchObject({ id: `token:${t.id}`, kind: 'token', token: { id: t.id, kind: 'org', scopes: ['project:read'], orgId: 'acme' } });
  });

  it('deleting an org takes memberships, org tokens, invitations and roles with it', async () => {
    const now = w.rt.clock.seconds;
    await w.call(httpEvent('POST', '/orgs', { body: { id: 'doomed', name: 'Doomed' }, context: userContext('root') }));
    await w.call(httpEvent('PUT', '/orgs/doomed/members/dee', { body: { roles: ['org-member'] }, context: userContext('root') }));
    await w.call(httpEvent('PUT', '/orgs/doomed/roles/crew', { body: { org: [{ resource: 'project', action: 'read' }] }, context: userContext('root') }));
    const t = generateToken();
    await w.rt.store.tokens.createToken({ id: t.id, kind: 'org', orgId: 'doomed', name: 'svc', secretHash: hashSecret(t.secret), createdAt: now, expiresAt: now + 1000 });
    expect((await w.call(httpEvent('DELETE', '/orgs/doomed', { context: userContext('dee') }))).status).toBe(403);
    expect((await w.call(httpEvent('DELETE', '/orgs/doomed', { context: userContext('root') }))).status).toBe(204);
    expect((await w.rt.store.users.loadUser('dee')).orgs).toEqual({});
    expect((await w.rt.store.users.loadUser('root')).orgs.doomed).toBeUndefined();
    expect((await w.rt.store.tokens.getToken(t.id))?.revokedAt).toBeDefined();
    expect((await w.rt.store.loadPolicy()).roles.find((r) => r.orgId === 'doomed')).toBeUndefined();
    expect((await w.call(httpEvent('GET', '/orgs/doomed', { context: userContext('root') }))).status).toBe(404);
  });
});

describe('route policies and the gate', () => {
  let w: W;
  beforeAll(async () => {
    w = await adminWorld();
  });

  it('PUT /policies/routes validates, stores and flags uncacheable conditions', async () => {
    const res = await w.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: ROUTES }, context: userContext('root') }));
    expect(res.status).toBe(200);
    expect(res.body.warnings).toEqual([expect.objectContaining({ route: 'POST /orgs/{orgId}/deploy', code: 'condition-not-cacheable' })]);
    const got = await w.call(httpEvent('GET', '/policies/routes', { context: userContext('auditor') }));
    expect(got.body.routes).toHaveLength(ROUTES.length);
    expect(got.body.version).toBe(res.body.version);
    expect((await w.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: [] }, context: userContext('ada') }))).status).toBe(403);
  });

  it.each([
    ['constructor access', { route: 'GET /x', resource: 'x', action: 'read', condition: 'principal.constructor' }, 'invalid-expression'],
    ['__proto__ by bracket', { route: 'GET /x', resource: 'x', action: 'read', condition: 'principal["__proto__"]' }, 'invalid-expression'],
    ['object literal', { route: 'GET /x', resource: 'x', action: 'read', condition: '{a: 1}.a == 1' }, 'invalid-expression'],
    ['unknown transform', { route: 'GET /x', resource: 'x', action: 'read', condition: 'principal.id|exec' }, 'invalid-expression'],
    ['bad route key', { route: 'GET x', resource: 'x', action: 'read' }, 'invalid-route'],
    ['bad resource', { route: 'GET /x', resource: 'X!', action: 'read' }, 'invalid-route'],
  ])('%s: 400 naming the route, nothing written', async (_n, bad, code) => {
    const before = (await w.rt.store.loadPolicy()).version;
    const res = await w.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: [ROUTES[0], bad] }, context: userContext('root') }));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toContain('routes[1]');
    expect((await w.rt.store.loadPolicy()).version).toBe(before);
  });

  it('duplicate routes are refused', async () => {
    const res = await w.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: [ROUTES[0], { ...ROUTES[0], action: 'list' }] }, context: userContext('root') }));
    expect(res.body.error.code).toBe('duplicate-route');
  });

  it('the gate is validated, set, reported and cleared', async () => {
    expect((await w.call(httpEvent('PUT', '/policies/gate', { headers: { 'if-match': '*' }, body: { expression: 'principal.constructor' }, context: userContext('root') }))).status).toBe(400);
    const set = await w.call(httpEvent('PUT', '/policies/gate', { headers: { 'if-match': '*' }, body: { expression: 'request.sourceIp|startsWith("10.")' }, context: userContext('root') }));
    expect(set.status).toBe(200);
    expect(set.body.warnings[0].code).toBe('condition-not-cacheable');
    expect((await w.call(httpEvent('GET', '/policies/gate', { context: userContext('root') }))).body.expression).toBe('request.sourceIp|startsWith("10.")');
    expect((await w.call(httpEvent('PUT', '/policies/gate', { headers: { 'if-match': '*' }, body: { expression: null }, context: userContext('root') }))).status).toBe(200);
    expect((await w.call(httpEvent('GET', '/policies/gate', { context: userContext('root') }))).body.expression).toBeNull();
  });

  it('a policy change reaches a warm authorizer within GATEHOUSE_CACHE_TTL_SECONDS', async () => {
    const clock = new TestClock();
    const w2 = await adminWorld({ clock });
    await w2.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: ROUTES }, context: userContext('root') }));
    const rest = createRestAuthorizer(w2.rt.gateway);
    const jwt = await w2.idp.sign('vic', clock.seconds);
    const ev = { type: 'TOKEN' as const, authorizationToken: `Bearer ${jwt}`, methodArn: 'arn:aws:execute-api:us-east-1:123456789012:api/prod/GET/orgs/acme/projects/p1' };
    expect((await rest(ev)).policyDocument.Statement[0]!.Effect).toBe('Allow');
    await w2.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: [{ ...ROUTES[0], action: 'admin' }] }, context: userContext('root') }));
    clock.advance(15);
    expect((await rest(ev)).policyDocument.Statement[0]!.Effect).toBe('Allow');
    clock.advance(16);
    expect((await rest(ev)).policyDocument.Statement[0]!.Effect).toBe('Deny');
  });
});

describe('explain', () => {
  let w: W;
  beforeAll(async () => {
    w = await adminWorld();
    await w.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: ROUTES }, context: userContext('root') }));
    await w.rt.store.policy.putRole({ name: 'no-delete', orgId: 'acme', site: [], org: [{ resource: 'project', action: 'delete', negate: true }], member: [], user: [] }, w.rt.clock.seconds);
    await w.rt.store.users.putMembership('acme', 'nd', ['org-admin', 'no-delete'], w.rt.clock.seconds);
  });
  const explain = (ctx: ReturnType<typeof userContext>, body: Record<string, unknown>) => w.call(httpEvent('POST', '/authz/explain', { body, context: ctx }));

  it.each([
    ['allow', 'ada', 'DELETE', '/orgs/acme/projects/p1', true, 'allow'],
    ['no route', 'ada', 'GET', '/nowhere', false, 'no-route'],
    ['not a member', 'ada', 'GET', '/orgs/globex/projects/p1', false, 'not-member'],
    ['no permission', 'mo', 'DELETE', '/orgs/acme/projects/p1', false, 'no-permission'],
    ['negated', 'nd', 'DELETE', '/orgs/acme/projects/p1', false, 'org-negated'],
    ['condition false', 'ada', 'GET', '/orgs/acme/billing', false, 'condition-false'],
  ])('%s', async (_n, userId, method, path, allowed, code) => {
    const res = await explain(userContext('root'), { userId, method, path });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ allowed, code });
    expect(res.body.reasons.length).toBeGreaterThan(0);
  });

  it('gate-denied, and scope-denied for a credential', async () => {
    await w.call(httpEvent('PUT', '/policies/gate', { headers: { 'if-match': '*' }, body: { expression: 'principal.id != "mo"' }, context: userContext('root') }));
    expect((await explain(userContext('root'), { userId: 'mo', method: 'GET', path: '/orgs/acme/projects/p1' })).body).toMatchObject({ allowed: false, code: 'gate-denied', expressions: [expect.objectContaining({ name: 'gate', result: false })] });
    await w.call(httpEvent('PUT', '/policies/gate', { headers: { 'if-match': '*' }, body: { expression: null }, context: userContext('root') }));
    const t = generateToken();
    await w.rt.store.tokens.createToken({ id: t.id, kind: 'personal', ownerId: 'ada', name: 'ro', scopes: ['project:read'], secretHash: hashSecret(t.secret), createdAt: w.rt.clock.seconds, expiresAt: w.rt.clock.seconds + 100 });
    expect((await explain(userContext('root'), { credential: t.token, method: 'DELETE', path: '/orgs/acme/projects/p1' })).body).toMatchObject({ allowed: false, code: 'scope-denied' });
    const jwt = await w.idp.sign('ada', w.rt.clock.seconds, { email: 'ada@x', email_verified: true });
    expect((await explain(userContext('root'), { credential: jwt, method: 'GET', path: '/orgs/acme/billing' })).body).toMatchObject({ allowed: true });
    expect((await explain(userContext('root'), { credential: 'junk', method: 'GET', path: '/x' })).body).toMatchObject({ allowed: false, status: 401 });
  });

  it('says whether a cached answer may be reused, and why not, in codes only', async () => {
    const deploy = await explain(userContext('ada'), { method: 'POST', path: '/orgs/acme/deploy' });
    expect(deploy.body).toMatchObject({ cacheable: false, cacheNotes: ['condition-not-cacheable'] });
    expect(JSON.stringify(deploy.body)).not.toContain('x-approved');
    expect((await explain(userContext('ada'), { method: 'GET', path: '/orgs/acme/billing' })).body).toMatchObject({ cacheable: true, cacheNotes: [] });
    expect((await explain(userContext('ada'), { method: 'GET', path: '/nowhere' })).body).toMatchObject({ cacheable: true, cacheNotes: [] });
    await w.call(httpEvent('PUT', '/policies/gate', { headers: { 'if-match': '*' }, body: { expression: 'now < 9999999999999' }, context: userContext('root') }));
    expect((await explain(userContext('ada'), { method: 'GET', path: '/orgs/acme/billing' })).body).toMatchObject({ cacheable: true, cacheNotes: ['gate-time-dependent'] });
    await w.call(httpEvent('PUT', '/policies/gate', { headers: { 'if-match': '*' }, body: { expression: 'request.sourceIp != "10.0.0.1"' }, context: userContext('root') }));
    expect((await explain(userContext('ada'), { method: 'GET', path: '/orgs/acme/billing' })).body).toMatchObject({ cacheable: false, cacheNotes: ['gate-not-cacheable'] });
    await w.call(httpEvent('PUT', '/policies/gate', { headers: { 'if-match': '*' }, body: { expression: null }, context: userContext('root') }));
  });

  it('decides with the set the API is bound to (apiId), or a named set (policy readers), and says which', async () => {
    const put = (path: string, body: unknown, headers: Record<string, string>) => w.call(httpEvent('PUT', path, { headers, body, context: userContext('root') }));
    expect((await put('/policies/sets/partner', { routes: [{ route: 'GET /partner/{id}', resource: 'org', action: 'read', org: 'acme' }] }, { 'if-none-match': '*' })).status).toBe(201);
    expect((await put('/policies/apis/partner001', { set: 'partner' }, { 'if-none-match': '*' })).status).toBe(201);
    const mo = { method: 'GET', path: '/partner/7' };
    // The default set has no such route; the API bound to `partner` allows it.
    expect((await explain(userContext('mo'), mo)).body).toMatchObject({ allowed: false, code: 'no-route' });
    expect((await explain(userContext('mo'), { ...mo, apiId: 'partner001' })).body).toMatchObject({ allowed: true });
    expect((await explain(userContext('mo'), { ...mo, apiId: 'unbound001' })).body).toMatchObject({ allowed: false, code: 'no-route' });
    // Which set decided is for policy readers.
    expect((await explain(userContext('mo'), { ...mo, apiId: 'partner001' })).body.policySet).toBeUndefined();
    expect((await explain(userContext('root'), { ...mo, userId: 'mo', apiId: 'partner001' })).body).toMatchObject({ allowed: true, policySet: 'partner' });
    expect((await explain(userContext('root'), { ...mo, userId: 'mo' })).body).toMatchObject({ allowed: false, policySet: 'default' });
    // Naming a set is for policy readers; a set that does not exist is a 404, bad names 400.
    expect((await explain(userContext('mo'), { ...mo, set: 'partner' })).body.error.code).toBe('cannot-read-policy');
    expect((await explain(userContext('root'), { ...mo, userId: 'mo', set: 'partner' })).body).toMatchObject({ allowed: true, policySet: 'partner' });
    expect((await explain(userContext('root'), { ...mo, set: 'ghost' })).status).toBe(404);
    expect((await explain(userContext('root'), { ...mo, set: 'Bad!' })).body.error.code).toBe('invalid-set-name');
    expect((await explain(userContext('root'), { ...mo, apiId: 'x' })).body.error.code).toBe('invalid-api-id');
    expect((await explain(userContext('root'), { ...mo, apiId: 'partner001', set: 'partner' })).status).toBe(400);
    // The built-in admin set decides the admin API: an org member may read, not delete, the org.
    expect((await explain(userContext('root'), { userId: 'mo', method: 'GET', path: '/orgs/acme', set: 'admin' })).body).toMatchObject({ allowed: true, policySet: 'admin' });
    expect((await explain(userContext('root'), { userId: 'mo', method: 'DELETE', path: '/orgs/acme', set: 'admin' })).body).toMatchObject({ allowed: false, policySet: 'admin' });
  });

  it('others only for themselves, and no side effects', async () => {
    expect((await explain(userContext('ada'), { method: 'DELETE', path: '/orgs/acme/projects/p1' })).body.allowed).toBe(true);
    expect((await explain(userContext('ada'), { userId: 'mo', method: 'GET', path: '/x' })).status).toBe(403);
    expect((await explain(userContext('ada'), { method: 'get', path: '/x' })).status).toBe(400);
    const before = (await w.items()).filter((i) => i.type !== 'audit').length;
    const t = generateToken();
    await explain(userContext('root'), { credential: t.token, method: 'GET', path: '/x' });
    expect((await w.items()).filter((i) => i.type !== 'audit').length).toBe(before);
  });
});

describe('audit', () => {
  it('records allowed and denied mutations; GET /audit filters and pages for site readers', async () => {
    const w = await adminWorld();
    await w.call(httpEvent('PUT', '/orgs/acme/members/x1', { body: { roles: ['org-member'] }, context: userContext('ada') }));
    w.rt.clock.advance(1); // records in the same second have no defined order
    await w.call(httpEvent('PUT', '/orgs/acme/members/x2', { body: { roles: ['org-admin'] }, context: userContext('mo') }));
    w.rt.clock.advance(2 * 86400);
    await w.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: ROUTES }, context: userContext('vic') }));
    const all = await w.call(httpEvent('GET', '/audit', { context: userContext('auditor') }));
    expect(all.status).toBe(200);
    expect(all.body.items.map((a: { action: string; outcome: string; actor: string }) => `${a.actor}:${a.action}:${a.outcome}`)).toEqual([
      'vic:policy.routes.put:denied',
      'mo:member.put:denied',
      'ada:member.put:allowed',
    ]);
    const ada = await w.call(httpEvent('GET', '/audit', { context: userContext('root'), query: { actor: 'ada' } }));
    expect(ada.body.items).toHaveLength(1);
    const paged: unknown[] = [];
    let cursor: string | undefined;
    do {
      const page = await w.call(httpEvent('GET', '/audit', { context: userContext('root'), query: { limit: '1', ...(cursor ? { cursor } : {}) } }));
      paged.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor && paged.length < 10);
    expect(paged.length).toBeGreaterThanOrEqual(3);
    expect((await w.call(httpEvent('GET', '/audit', { context: userContext('ada') }))).status).toBe(403);
    expect((await w.call(httpEvent('GET', '/audit', { context: userContext('root'), query: { since: '0', until: String(w.rt.clock.seconds) } }))).status).toBe(400);
    expect((await w.call(httpEvent('GET', '/audit', { context: userContext('root'), query: { cursor: 'garbage!' } }))).status).toBe(400);
  });
});

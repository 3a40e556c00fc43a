/**
 * The route specs (and so docs/openapi.json and docs/admin-api.md) say what the real
 * handlers answer: every route is called through the real functions over DynamoDB Local,
 * and every answer must be declared: its status, its body's schema, its error code.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { compileRouteTable } from '../../core/policy/routes';
import { buildHandlers } from '../../functions/apps';
import { ADMIN_ROUTES } from '../../functions/routes';
import { allErrors, specFor } from '../../scripts/openapi';
import { httpEvent, userContext, type AuthorizerContext } from '../support/events';
import { testRuntime } from '../support/runtime';

const table = compileRouteTable(Object.keys(ADMIN_ROUTES).map((route) => ({ route, resource: 'api', action: 'call' })));
const answered = new Map<string, Set<number>>();

async function world() {
  const rt = await testRuntime({ ttl: false });
  await rt.store.users.putSiteRoles('root', ['site-admin'], rt.clock.seconds);
  const h = buildHandlers(rt);
  const problems: string[] = [];
  const call = async (method: string, path: string, context: AuthorizerContext, body?: unknown, query?: Record<string, string>, headers?: Record<string, string>) => {
    const match = table.match(method, path.split('?')[0]!)!;
    const route = match.rule.route;
    const fn = ADMIN_ROUTES[route as keyof typeof ADMIN_ROUTES];
    const res = await h[fn](httpEvent(method, path, { context, ...(body !== undefined ? { body } : {}), ...(query ? { query } : {}), ...(headers ? { headers } : {}) }));
    const parsed = res.body ? JSON.parse(res.body) : undefined;
    const spec = specFor(route);
    const ok = spec.responses[res.statusCode];
    if (ok) {
      if (ok.schema) {
        const r = ok.schema.safeParse(parsed);
        if (!r.success) problems.push(`${route} ${res.statusCode}: body does not match its schema: ${JSON.stringify(r.error.issues[0])}`);
      } else if (parsed !== undefined) problems.push(`${route} ${res.statusCode}: declared empty, answered ${res.body.slice(0, 80)}`);
      for (const name of Object.keys(ok.headers ?? {})) {
        if (!res.headers[name.toLowerCase()]) problems.push(`${route} ${res.statusCode}: declared header ${name} is missing`);
      }
    } else {
      const code = parsed?.error?.code;
      if (!allErrors(spec).some((e) => e.status === res.statusCode && e.code === code)) problems.push(`${route}: ${res.statusCode} ${code} is not declared`);
    }
    if (!answered.has(route)) answered.set(route, new Set());
    answered.get(route)!.add(res.statusCode);
    return { status: res.statusCode, body: parsed, headers: res.headers };
  };
  return { rt, call, problems };
}

const root = userContext('root');
const alice = userContext('alice', 'alice@example.com');
const bob = userContext('bob', 'bob@example.com');

describe('what the handlers answer is what the specs declare', () => {
  afterAll(() => {
    // Every route was answered with one of its success statuses at least once.
    const missing = Object.keys(ADMIN_ROUTES).filter((r) => ![...(answered.get(r) ?? [])].some((s) => specFor(r).responses[s]));
    expect(missing).toEqual([]);
  });

  it('orgs, invitations, members, site roles and roles', async () => {
    const { call, problems } = await world();
    await call('GET', '/me', root);
    expect((await call('POST', '/orgs', root, { id: 'acme', name: 'Acme' })).status).toBe(201);
    await call('POST', '/orgs', root, { id: 'acme', name: 'Acme' });
    await call('POST', '/orgs', root, { id: 'A!', name: 'x' });
    await call('POST', '/orgs', alice, { name: 'Nope' });
    await call('GET', '/orgs', root, undefined, { limit: '2' });
    await call('GET', '/orgs', root, undefined, { limit: 'lots' });
    await call('GET', '/orgs/acme', root);
    await call('GET', '/orgs/nosuch', root);
    const inv = await call('POST', '/orgs/acme/invitations', root, { email: 'alice@example.com', role: 'org-admin' });
    await call('POST', '/orgs/acme/invitations', root, { email: 'alice@example.com', role: 'org-admin' });
    await call('POST', '/orgs/acme/invitations', root, { email: 'x@example.com', role: 'no-such-role' });
    const forBob = await call('POST', '/orgs/acme/invitations', root, { email: 'bob@example.com', role: 'org-member' });
    const forCarol = await call('POST', '/orgs/acme/invitations', root, { email: 'carol@example.com', role: 'org-member', expiresInDays: 2 });
    await call('GET', '/orgs/acme/invitations', root, undefined, { status: 'pending' });
    await call('GET', '/invitations', alice);
    await call('POST', `/invitations/${inv.body.id}/accept`, bob);
    expect((await call('POST', `/invitations/${inv.body.id}/accept`, alice)).status).toBe(200);
    await call('POST', `/invitations/${inv.body.id}/accept`, alice);
    expect((await call('POST', `/invitations/${forBob.body.id}/decline`, bob)).status).toBe(204);
    expect((await call('DELETE', `/orgs/acme/invitations/${forCarol.body.id}`, root)).status).toBe(204);
    await call('DELETE', `/orgs/acme/invitations/${forCarol.body.id}`, root);
    await call('GET', '/orgs/acme/members', alice);
    expect((await call('PUT', '/orgs/acme/members/dave', alice, { roles: ['org-viewer'] })).status).toBe(201);
    expect((await call('PUT', '/orgs/acme/members/dave', alice, { roles: ['org-member'] })).status).toBe(200);
    await call('PUT', '/orgs/acme/members/alice', alice, { roles: ['org-admin', 'org-viewer'] });
    expect((await call('DELETE', '/orgs/acme/members/dave', alice)).status).toBe(204);
    await call('DELETE', '/orgs/acme/members/dave', alice);
    expect((await call('PUT', '/users/erin/site-roles', root, { roles: ['site-viewer'] })).status).toBe(200);
    await call('PUT', '/users/root/site-roles', root, { roles: [] });
    await call('GET', '/roles', alice);
    expect((await call('PUT', '/roles/auditor', root, { displayName: 'Auditor', site: [{ resource: 'audit', action: 'read' }] })).status).toBe(201);
    await call('PUT', '/roles/org-admin', root, {});
    await call('PUT', '/roles/x', root, { site: [{ resource: 'A' }] });
    expect((await call('DELETE', '/roles/auditor', root)).status).toBe(204);
    await call('DELETE', '/roles/auditor', root);
    await call('GET', '/orgs/acme/roles', alice);
    expect((await call('PUT', '/orgs/acme/roles/reader', alice, { org: [{ resource: 'project', action: 'read' }] })).status).toBe(201);
    await call('PUT', '/orgs/acme/roles/wild', alice, { org: [{ resource: '*', action: 'read' }] });
    expect((await call('DELETE', '/orgs/acme/roles/reader', alice)).status).toBe(204);
    await call('DELETE', '/orgs/acme', bob);
    expect((await call('DELETE', '/orgs/acme', root)).status).toBe(204);
    expect(problems).toEqual([]);
  });

  it('tokens', async () => {
    const { rt, call, problems } = await world();
    await rt.store.orgs.createOrg({ id: 'acme', name: 'Acme', createdAt: rt.clock.seconds });
    await rt.store.users.putMembership('acme', 'alice', ['org-admin'], rt.clock.seconds);
    const mine = await call('POST', '/tokens', alice, { name: 'laptop', expiresInDays: 30 });
    expect(mine.status).toBe(201);
    await call('POST', '/tokens', alice, { name: 'x', scopes: ['site:everything'] });
    await call('POST', '/tokens', alice, { name: 'x', scopes: ['Bad'] });
    await call('POST', '/tokens', alice, { name: 'x', extra: 1 });
    expect((await call('POST', '/orgs/acme/tokens', alice, { name: 'ci', scopes: ['project:read'] })).status).toBe(201);
    await call('POST', '/orgs/globex/tokens', alice, { name: 'ci' });
    expect((await call('POST', '/site/tokens', root, { name: 'ops' })).status).toBe(201);
    await call('POST', '/site/tokens', alice, { name: 'ops' });
    await call('GET', '/tokens', alice);
    await call('GET', '/orgs/acme/tokens', alice, undefined, { cursor: 'bogus' });
    await call('GET', '/orgs/acme/tokens', alice);
    await call('GET', '/site/tokens', root);
    await call('GET', '/site/tokens', alice);
    await call('GET', `/tokens/${mine.body.id}`, alice);
    await call('GET', '/tokens/AAAAAAAAAAAAAAAA', alice);
    expect((await call('POST', `/tokens/${mine.body.id}/rotate`, alice, { graceSeconds: 60 })).status).toBe(200);
    await call('POST', `/tokens/${mine.body.id}/rotate`, alice, { graceSeconds: -1 });
    await call('GET', `/tokens/${mine.body.id}/access-log`, alice);
    expect((await call('DELETE', `/tokens/${mine.body.id}`, alice)).status).toBe(204);
    await call('DELETE', `/tokens/${mine.body.id}`, alice);
    expect(problems).toEqual([]);
  });

  it('policies, explain and audit', async () => {
    const { call, problems } = await world();
    const tag = async (path: string) => (await call('GET', path, root)).headers.etag!;
    await call('GET', '/policies/routes', alice);
    const rule = { route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'read', org: '{orgId}', condition: 'request.query.x == "1"' };
    expect((await call('PUT', '/policies/routes', root, { routes: [rule] })).status).toBe(428);
    expect((await call('PUT', '/policies/routes', root, { routes: [rule] }, undefined, { 'if-match': await tag('/policies/routes') })).status).toBe(200);
    expect((await call('PUT', '/policies/routes', root, { routes: [rule] }, undefined, { 'if-match': '"0"' })).status).toBe(412);
    await call('PUT', '/policies/routes', root, { routes: [rule] }, undefined, { 'if-match': 'nope' });
    await call('PUT', '/policies/routes', root, { routes: [rule] }, undefined, { 'if-match': '*', 'if-none-match': '*' });
    await call('PUT', '/policies/routes', root, { routes: [rule] }, undefined, { 'if-none-match': 'x' });
    await call('PUT', '/policies/routes', root, { routes: [{ route: 'NOPE', resource: 'x', action: 'y' }] }, undefined, { 'if-match': '*' });
    await call('PUT', '/policies/routes', root, { routes: [{ route: 'GET /a', resource: 'x', action: 'y', condition: 'constructor' }] }, undefined, { 'if-match': '*' });
    expect((await call('PUT', '/policies/gate', root, { expression: 'principal.kind != "anonymous"' }, undefined, { 'if-match': await tag('/policies/gate') })).status).toBe(200);
    await call('PUT', '/policies/gate', root, { expression: '((' }, undefined, { 'if-match': '*' });

    // Policy sets and bindings.
    expect((await call('GET', '/policies/sets', root)).status).toBe(200);
    await call('GET', '/policies/sets', alice);
    await call('GET', '/policies/sets/admin', root);
    await call('GET', '/policies/sets/Nope', root);
    await call('GET', '/policies/sets/missing', root);
    const set = { routes: [{ route: 'GET /things/{id}', resource: 'thing', action: 'read' }], tests: [{ name: 't', principal: { kind: 'user', id: 'u' }, request: { method: 'GET', path: '/things/1' }, expect: 'deny' }] };
    expect((await call('PUT', '/policies/sets/partner', root, set, undefined, { 'if-none-match': '*' })).status).toBe(201);
    expect((await call('PUT', '/policies/sets/partner', root, set, undefined, { 'if-none-match': '*' })).status).toBe(412);
    await call('PUT', '/policies/sets/admin', root, set, undefined, { 'if-match': '*' });
    await call('PUT', '/policies/sets/partner', root, { ...set, tests: [{ name: 'x' }] }, undefined, { 'if-match': '*' });
    const got = await call('GET', '/policies/sets/partner', root);
    expect((await call('PUT', '/policies/sets/partner', root, got.body, undefined, { 'if-match': got.headers.etag! })).status).toBe(200);
    expect((await call('PATCH', '/policies/sets/partner', root, { upsert: [{ route: 'POST /things', resource: 'thing', action: 'create' }] }, undefined, { 'if-match': await tag('/policies/sets/partner') })).status).toBe(200);
    await call('PATCH', '/policies/sets/partner', root, {}, undefined, { 'if-match': '*' });
    await call('PATCH', '/policies/sets/partner', root, { remove: ['DELETE /nothing'] }, undefined, { 'if-match': '*' });
    await call('PATCH', '/policies/sets/ghost', root, { remove: ['GET /x'] }, undefined, { 'if-match': '*' });
    await call('PATCH', '/policies/sets/partner', root, { upsert: [{ route: 'GET /y', resource: 'x', action: 'y' }] });
    // Policy tests on writes, the test endpoint, history and rollback.
    await call('PUT', '/policies/sets/partner', root, { ...set, tests: [{ ...set.tests[0], expect: 'allow' }] }, undefined, { 'if-match': '*' });
    await call('PUT', '/policies/sets/partner', root, { ...set, tests: [{ ...set.tests[0], principal: { kind: 'user', id: 'u', siteRoles: ['nope'] } }] }, undefined, { 'if-match': '*' });
    expect((await call('POST', '/policies/sets/partner/test', root, {})).status).toBe(200);
    await call('POST', '/policies/sets/partner/test', root, { routes: [], tests: [{ ...set.tests[0], expect: 'allow' }] });
    await call('POST', '/policies/sets/partner/test', root, { gate: '((' });
    await call('POST', '/policies/sets/partner/test', alice, {});
    await call('POST', '/policies/sets/ghost/test', root, {});
    expect((await call('GET', '/policies/sets/partner/versions', root, undefined, { limit: '2' })).status).toBe(200);
    await call('GET', '/policies/sets/partner/versions', root, undefined, { cursor: 'forged' });
    await call('GET', '/policies/sets/ghost/versions', root);
    expect((await call('GET', '/policies/sets/partner/versions/1', root)).status).toBe(200);
    await call('GET', '/policies/sets/partner/versions/999', root);
    await call('GET', '/policies/sets/partner/versions/x', root);
    await call('POST', '/policies/sets/partner/rollback', root, { version: '1' });
    await call('POST', '/policies/sets/partner/rollback', root, { version: '1' }, undefined, { 'if-match': '"1"' });
    await call('POST', '/policies/sets/partner/rollback', root, { version: 'x' }, undefined, { 'if-match': '*' });
    await call('POST', '/policies/sets/admin/rollback', root, { version: '1' }, undefined, { 'if-match': '*' });
    expect((await call('POST', '/policies/sets/partner/rollback', root, { version: '1' }, undefined, { 'if-match': await tag('/policies/sets/partner') })).status).toBe(200);
    expect((await call('PUT', '/policies/apis/abcdef1234', root, { set: 'partner' }, undefined, { 'if-none-match': '*' })).status).toBe(201);
    await call('PUT', '/policies/apis/abcdef1234', root, { set: 'partner' }, undefined, { 'if-none-match': '*' });
    await call('PUT', '/policies/apis/ABC', root, { set: 'partner' }, undefined, { 'if-none-match': '*' });
    await call('PUT', '/policies/apis/abcdef9999', root, { set: 'nosuchset' }, undefined, { 'if-none-match': '*' });
    expect((await call('PUT', '/policies/apis/abcdef1234', root, { set: 'default' }, undefined, { 'if-match': await tag('/policies/apis/abcdef1234') })).status).toBe(200);
    await call('PUT', '/policies/apis/abcdef1234', root, { set: 'partner' }, undefined, { 'if-match': await tag('/policies/apis/abcdef1234') });
    expect((await call('GET', '/policies/apis', root)).status).toBe(200);
    await call('GET', '/policies/apis', root, undefined, { cursor: 'forged' });
    await call('GET', '/policies/apis/abcdef0000', root);
    // Shadow mode: a candidate of partner.
    const candidate = { routes: [{ route: 'GET /things/{id}', resource: 'thing', action: 'read', condition: 'principal.id != "u"' }] };
    await call('GET', '/policies/sets/partner/candidate', root);
    await call('GET', '/policies/sets/ghost/candidate', root);
    await call('GET', '/policies/sets/admin/candidate/report', root);
    await call('PUT', '/policies/sets/partner/candidate', root, candidate);
    await call('PUT', '/policies/sets/partner/candidate', alice, candidate, undefined, { 'if-none-match': '*' });
    await call('PUT', '/policies/sets/partner/candidate', root, { routes: [{ route: 'NOPE' }] }, undefined, { 'if-none-match': '*' });
    await call('PUT', '/policies/sets/admin/candidate', root, candidate, undefined, { 'if-none-match': '*' });
    await call('PUT', '/policies/sets/ghost/candidate', root, candidate, undefined, { 'if-none-match': '*' });
    await call('PUT', '/policies/sets/default/candidate', root, candidate, undefined, { 'if-none-match': '*' });
    expect((await call('PUT', '/policies/sets/partner/candidate', root, candidate, undefined, { 'if-none-match': '*' })).status).toBe(201);
    const cand = await call('GET', '/policies/sets/partner/candidate', root);
    expect((await call('PUT', '/policies/sets/partner/candidate', root, cand.body, undefined, { 'if-match': cand.headers.etag! })).status).toBe(200);
    await call('PUT', '/policies/sets/partner/candidate', root, candidate, undefined, { 'if-match': '"99"' });
    expect((await call('GET', '/policies/sets/partner/candidate/report', root)).status).toBe(200);
    await call('POST', '/policies/sets/partner/candidate/promote', root);
    await call('POST', '/policies/sets/partner/candidate/promote', root, undefined, undefined, { 'if-match': '"99"' });
    expect((await call('POST', '/policies/sets/partner/candidate/promote', root, undefined, undefined, { 'if-match': await tag('/policies/sets/partner') })).status).toBe(200);
    await call('POST', '/policies/sets/partner/candidate/promote', root, undefined, undefined, { 'if-match': '*' });
    expect((await call('PUT', '/policies/sets/partner/candidate', root, candidate, undefined, { 'if-none-match': '*' })).status).toBe(201);
    await call('DELETE', '/policies/sets/partner/candidate', root);
    expect((await call('DELETE', '/policies/sets/partner/candidate', root, undefined, undefined, { 'if-match': await tag('/policies/sets/partner/candidate') })).status).toBe(204);
    await call('DELETE', '/policies/sets/partner/candidate', root, undefined, undefined, { 'if-match': '*' });

    await call('DELETE', '/policies/sets/partner', root, undefined, undefined, { 'if-match': '*' });
    await call('DELETE', '/policies/sets/default', root, undefined, undefined, { 'if-match': '*' });
    await call('DELETE', '/policies/sets/admin', root, undefined, undefined, { 'if-match': '*' });
    await call('DELETE', '/policies/apis/abcdef0000', root, undefined, undefined, { 'if-match': '*' });
    expect((await call('DELETE', '/policies/apis/abcdef1234', root, undefined, undefined, { 'if-match': await tag('/policies/apis/abcdef1234') })).status).toBe(204);
    expect((await call('DELETE', '/policies/sets/partner', root, undefined, undefined, { 'if-match': await tag('/policies/sets/partner') })).status).toBe(204);
    await call('DELETE', '/policies/sets/partner', alice, undefined, undefined, { 'if-match': '*' });

    expect((await call('POST', '/authz/explain', alice, { method: 'GET', path: '/orgs/acme/projects?x=1' })).status).toBe(200);
    await call('POST', '/authz/explain', root, { method: 'GET', path: '/x', credential: 'gat_bogus' });
    await call('POST', '/authz/explain', alice, { method: 'GET', path: '/x', userId: 'root' });
    await call('POST', '/authz/explain', alice, { method: 'get', path: 'x' });
    expect((await call('GET', '/audit', root, undefined, { limit: '5' })).status).toBe(200);
    await call('GET', '/audit', root, undefined, { since: '100', until: '50' });
    await call('GET', '/audit', alice);
    expect(problems).toEqual([]);
  });
});

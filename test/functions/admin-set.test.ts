import { describe, expect, it } from 'vitest';
import { decide } from '../../core/authorizer/decide';
import { compilePolicy } from '../../core/authorizer/policy';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import { ADMIN_SET_ROUTES } from '../../core/policy/admin-set';
import { loadExpressionEngine } from '../../core/policy/expression';
import { parseRouteKey, routeShape } from '../../core/policy/routes';
import { InvitationRepo } from '../../core/store/dynamo/invitations';
import type { TokenRecord } from '../../core/store/types';
import { buildHandlers } from '../../functions/apps';
import { createRuntime } from '../../functions/runtime';
import { ADMIN_ROUTES } from '../../functions/routes';
import { bootstrapAdmin } from '../../scripts/bootstrap-admin';
import { httpEvent, tokenContext, userContext, type AuthorizerContext } from '../support/events';
import { adminWorld } from './admin-support';

// These tests validate and compile expressions directly: jexl is loaded on first need (core/policy/expression.ts).
await loadExpressionEngine();

type W = Awaited<ReturnType<typeof adminWorld>>;
type RouteKey = keyof typeof ADMIN_ROUTES;

describe('the admin set', () => {
  it('has exactly one rule per admin endpoint, and every rule parses', () => {
    expect(ADMIN_SET_ROUTES.map((r) => r.route).sort()).toEqual(Object.keys(ADMIN_ROUTES).sort());
    expect(new Set(ADMIN_SET_ROUTES.map((r) => routeShape(parseRouteKey(r.route)))).size).toBe(ADMIN_SET_ROUTES.length);
    for (const r of ADMIN_SET_ROUTES) {
      // Either a permission the gateway checks (never public), or signed-in only.
      if (r.public) expect(r.condition, r.route).toBe('principal.kind != "anonymous"');
      else expect(r.condition, r.route).toBeUndefined();
      if (r.org !== undefined) expect(r.org, r.route).toBe('{orgId}');
      expect(r.owner, r.route).toBeUndefined();
    }
  });
});

/**
 * The principals of the matrix. A guard below fails when a kind of principal is missing:
 * site admin and viewer, org admin, member and viewer, an outsider, a user whose custom
 * role negates, and personal, org and site tokens with and without scopes.
 */
const PRINCIPALS = [
  'site-admin', 'site-viewer', 'org-admin', 'org-member', 'org-viewer', 'outsider', 'negated',
  'personal-token', 'personal-token-scoped', 'org-token', 'org-token-scoped', 'site-token', 'site-token-scoped',
] as const;
type PrincipalName = (typeof PRINCIPALS)[number];

interface Case {
  route: RouteKey;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A world for one principal: the orgs and people of adminWorld, plus what the requests act on. */
async function matrixWorld(who: PrincipalName) {
  const w = await adminWorld();
  const now = w.rt.clock.seconds;
  const store = w.rt.store;
  await store.users.putSiteRoles('neg', ['site-viewer', 'no-policy'], now);
  await store.policy.putRole({ name: 'no-policy', site: [{ resource: 'policy', action: '*', negate: true }], org: [], member: [], user: [] }, now);
  await store.users.putMembership('acme', 'neg', ['org-admin'], now);
  await store.policy.putRole({ name: 'no-invites', orgId: 'acme', site: [], org: [{ resource: 'invitation', action: '*', negate: true }], member: [], user: [] }, now);
  await store.users.putMembership('acme', 'neg', ['org-admin', 'no-invites'], now);
  const token = async (fields: Partial<TokenRecord> & Pick<TokenRecord, 'kind'>) => {
    const t = generateToken();
    await store.tokens.createToken({ id: t.id, name: 'm', secretHash: hashSecret(t.secret), createdAt: now, expiresAt: now + 86400, ...fields });
    return t.id;
  };
  const contexts: Record<PrincipalName, () => Promise<AuthorizerContext>> = {
    'site-admin': async () => userContext('root'),
    'site-viewer': async () => userContext('auditor'),
    'org-admin': async () => userContext('ada'),
    'org-member': async () => userContext('mo'),
    'org-viewer': async () => userContext('vic'),
    outsider: async () => userContext('zed'),
    negated: async () => userContext('neg'),
    'personal-token': async () => tokenContext(await token({ kind: 'personal', ownerId: 'ada' }), 'ada', 'ada'),
    'personal-token-scoped': async () => tokenContext(await token({ kind: 'personal', ownerId: 'ada', scopes: ['org:read', 'invitation:create', 'invitation:list', 'token:create'] }), 'ada', 'ada'),
    'org-token': async () => {
      const id = await token({ kind: 'org', orgId: 'acme' });
      return tokenContext(id, `token:${id}`);
    },
    'org-token-scoped': async () => {
      const id = await token({ kind: 'org', orgId: 'acme', scopes: ['membership:list', 'invitation:create', 'org:read', 'token:list'] });
      return tokenContext(id, `token:${id}`);
    },
    'site-token': async () => {
      const id = await token({ kind: 'site' });
      return tokenContext(id, `token:${id}`);
    },
    'site-token-scoped': async () => {
      const id = await token({ kind: 'site', scopes: ['policy:read', 'policy:list', 'org:list', 'audit:read', 'role:update'] });
      return tokenContext(id, `token:${id}`);
    },
  };
  const ctx = await contexts[who]();
  const principal = (await w.rt.callers.fromContext(ctx)).principal;
  return { w, ctx, principal, token };
}

/**
 * One or more valid requests per admin endpoint: bodies that pass validation and objects
 * that exist, so a refusal by the function is about permission. Org-bound endpoints are
 * asked in the principal's org and in another. Requests that destroy what later ones
 * need come last (a world per principal).
 */
async function cases(w: W, token: (f: Partial<TokenRecord> & Pick<TokenRecord, 'kind'>) => Promise<string>): Promise<Case[]> {
  const now = w.rt.clock.seconds;
  const store = w.rt.store;
  const invitations = new InvitationRepo(store.db);
  let n = 0;
  const uniq = (p: string) => `${p}-${++n}`;
  const invite = async (orgId: string) => {
    const id = `inv${String(++n).padStart(19, '0')}`;
    await invitations.create({ id, orgId, email: `${id}@example.com`, role: 'org-member', status: 'pending', senderId: 'root', createdAt: now, expiresAt: now + 86400 }, now);
    return id;
  };
  const out: Case[] = [];
  const add = (route: RouteKey, path: string, extra: Omit<Case, 'route' | 'path'> = {}) => out.push({ route, path, ...extra });
  const orgs = ['acme', 'globex'];

  add('POST /tokens', '/tokens', { body: { name: 't', scopes: ['org:read'] } });
  for (const o of orgs) add('POST /orgs/{orgId}/tokens', `/orgs/${o}/tokens`, { body: { name: 't', scopes: ['org:read'] } });
  add('POST /site/tokens', '/site/tokens', { body: { name: 't', scopes: ['org:list'] } });
  add('GET /tokens', '/tokens');
  for (const o of orgs) add('GET /orgs/{orgId}/tokens', `/orgs/${o}/tokens`);
  add('GET /site/tokens', '/site/tokens');
  for (const owner of ['ada', 'mo']) {
    add('GET /tokens/{id}', `/tokens/${await token({ kind: 'personal', ownerId: owner })}`);
    add('GET /tokens/{id}/access-log', `/tokens/${await token({ kind: 'personal', ownerId: owner })}/access-log`);
    add('POST /tokens/{id}/rotate', `/tokens/${await token({ kind: 'personal', ownerId: owner })}/rotate`, { body: {} });
    add('DELETE /tokens/{id}', `/tokens/${await token({ kind: 'personal', ownerId: owner })}`);
  }
  add('GET /tokens/{id}', `/tokens/${await token({ kind: 'org', orgId: 'acme' })}`);
  for (const o of orgs) {
    add('POST /orgs/{orgId}/invitations', `/orgs/${o}/invitations`, { body: { email: `${uniq('x')}@example.com`, role: 'org-viewer' } });
    add('GET /orgs/{orgId}/invitations', `/orgs/${o}/invitations`);
    add('DELETE /orgs/{orgId}/invitations/{id}', `/orgs/${o}/invitations/${await invite(o)}`);
  }
  add('GET /invitations', '/invitations');
  add('POST /invitations/{id}/accept', `/invitations/${await invite('globex')}/accept`);
  add('POST /invitations/{id}/decline', `/invitations/${await invite('globex')}/decline`);
  add('GET /me', '/me');
  add('POST /orgs', '/orgs', { body: { name: 'New org' } });
  add('GET /orgs', '/orgs');
  for (const o of orgs) {
    add('GET /orgs/{orgId}', `/orgs/${o}`);
    add('GET /orgs/{orgId}/members', `/orgs/${o}/members`);
    add('PUT /orgs/{orgId}/members/{userId}', `/orgs/${o}/members/${uniq('newbie')}`, { body: { roles: ['org-viewer'] } });
    const leaving = uniq('leaver');
    await store.users.putMembership(o, leaving, ['org-member'], now);
    add('DELETE /orgs/{orgId}/members/{userId}', `/orgs/${o}/members/${leaving}`);
    add('GET /orgs/{orgId}/roles', `/orgs/${o}/roles`);
    add('PUT /orgs/{orgId}/roles/{name}', `/orgs/${o}/roles/${uniq('crew')}`, { body: { org: [] } });
    const doomed = uniq('old-crew');
    await store.policy.putRole({ name: doomed, orgId: o, site: [], org: [], member: [], user: [] }, now);
    add('DELETE /orgs/{orgId}/roles/{name}', `/orgs/${o}/roles/${doomed}`);
  }
  // Members may leave on their own: the function allows it without membership:delete.
  add('DELETE /orgs/{orgId}/members/{userId}', '/orgs/acme/members/mo');
  add('PUT /users/{userId}/site-roles', `/users/${uniq('someone')}/site-roles`, { body: { roles: ['site-viewer'] } });
  add('GET /roles', '/roles');
  add('PUT /roles/{name}', `/roles/${uniq('site-crew')}`, { body: { site: [] } });
  const siteDoomed = uniq('site-old');
  await store.policy.putRole({ name: siteDoomed, site: [], org: [], member: [], user: [] }, now);
  add('DELETE /roles/{name}', `/roles/${siteDoomed}`);
  const any = { 'if-match': '*' };
  add('GET /policies/routes', '/policies/routes');
  add('PUT /policies/routes', '/policies/routes', { body: { routes: [] }, headers: any });
  add('GET /policies/gate', '/policies/gate');
  add('PUT /policies/gate', '/policies/gate', { body: { expression: null }, headers: any });
  add('GET /policies/sets', '/policies/sets');
  for (const set of ['admin', 'default']) add('GET /policies/sets/{set}', `/policies/sets/${set}`);
  add('PUT /policies/sets/{set}', `/policies/sets/${uniq('new')}`, { body: { routes: [] }, headers: { 'if-none-match': '*' } });
  const kept = uniq('kept');
  await store.policy.writeSet(await store.policy.readSet(kept), { routes: [] }, now, 'setup');
  add('PATCH /policies/sets/{set}', `/policies/sets/${kept}`, { body: { upsert: [{ route: 'GET /x', resource: 'x', action: 'read' }] }, headers: any });
  const gone = uniq('gone');
  await store.policy.writeSet(await store.policy.readSet(gone), { routes: [] }, now, 'setup');
  add('DELETE /policies/sets/{set}', `/policies/sets/${gone}`, { headers: any });
  add('POST /policies/sets/{set}/test', `/policies/sets/${kept}/test`, { body: {} });
  add('GET /policies/sets/{set}/versions', `/policies/sets/${kept}/versions`);
  add('GET /policies/sets/{set}/versions/{version}', `/policies/sets/${kept}/versions/1`);
  const restored = uniq('restored');
  await store.policy.writeSet(await store.policy.readSet(restored), { routes: [] }, now, 'setup');
  add('POST /policies/sets/{set}/rollback', `/policies/sets/${restored}/rollback`, { body: { version: '1' }, headers: any });
  add('GET /policies/apis', '/policies/apis');
  await store.policy.putBinding(await store.policy.readBinding('aaaaaaaaaa'), 'default', now, 'setup');
  add('GET /policies/apis/{apiId}', '/policies/apis/aaaaaaaaaa');
  add('PUT /policies/apis/{apiId}', '/policies/apis/bbbbbbbbbb', { body: { set: 'default' }, headers: { 'if-none-match': '*' } });
  await store.policy.putBinding(await store.policy.readBinding('cccccccccc'), 'default', now, 'setup');
  add('DELETE /policies/apis/{apiId}', '/policies/apis/cccccccccc', { headers: any });
  // Shadow mode: each write on a set of its own, with a candidate where it needs one.
  const stored = async (withCandidate: boolean) => {
    const name = uniq('shadowed');
    await store.policy.writeSet(await store.policy.readSet(name), { routes: [] }, now, 'setup');
    if (withCandidate) await store.policy.putCandidate(await store.policy.readCandidate(name), { routes: [], tests: [] }, now, 'setup');
    return name;
  };
  const shadowed = await stored(true);
  add('GET /policies/sets/{set}/candidate', `/policies/sets/${shadowed}/candidate`);
  add('GET /policies/sets/{set}/candidate/report', `/policies/sets/${shadowed}/candidate/report`);
  add('PUT /policies/sets/{set}/candidate', `/policies/sets/${await stored(false)}/candidate`, { body: { routes: [] }, headers: { 'if-none-match': '*' } });
  add('DELETE /policies/sets/{set}/candidate', `/policies/sets/${await stored(true)}/candidate`, { headers: any });
  add('POST /policies/sets/{set}/candidate/promote', `/policies/sets/${await stored(true)}/candidate/promote`, { headers: any });
  add('POST /authz/explain', '/authz/explain', { body: { method: 'GET', path: '/orgs/acme' } });
  add('GET /audit', '/audit');
  // Last: deleting an org takes the principal's memberships and tokens with it.
  add('DELETE /orgs/{orgId}', '/orgs/globex');
  add('DELETE /orgs/{orgId}', '/orgs/acme');
  return out;
}

describe('the gateway never refuses what the function would allow', () => {
  it.each(PRINCIPALS)('%s: on every admin endpoint, an admin-set denial is a 403/404 from the function too', async (who) => {
    const { w, ctx, principal, token } = await matrixWorld(who);
    const h = buildHandlers(w.rt);
    const admin = compilePolicy(await w.rt.store.loadPolicy('admin'));
    const list = await cases(w, token);
    // Guard: every admin endpoint is asked.
    expect(new Set(list.map((c) => c.route))).toEqual(new Set(Object.keys(ADMIN_ROUTES)));
    const rows: string[] = [];
    const mismatches: string[] = [];
    for (const c of list) {
      const [method] = c.route.split(' ') as [string];
      const request = { method, path: c.path, headers: {}, query: {} };
      const gateway = decide(admin, principal, request, w.rt.now());
      expect(gateway.route, `${c.route}: matched by its own rule`).toBe(c.route);
      const res = await h[ADMIN_ROUTES[c.route]](httpEvent(method, c.path, { ...(c.body !== undefined ? { body: c.body } : {}), context: ctx, ...(c.headers ? { headers: c.headers } : {}) }));
      const refused = res.statusCode === 403 || res.statusCode === 404;
      const code = res.statusCode >= 400 ? (JSON.parse(res.body) as { error: { code: string } }).error.code : '';
      expect(res.statusCode, `${who} ${method} ${c.path}: ${res.body}`).not.toBe(500);
      rows.push(`${gateway.allowed ? 'allow' : 'deny '} ${res.statusCode} ${method} ${c.path} ${code}`);
      // The property: a gateway denial is never a request the function would have served.
      if (!gateway.allowed) expect(refused, `${who}: the admin set denies ${method} ${c.path} (${gateway.code}) but the function answers ${res.statusCode} ${res.body}`).toBe(true);
      // Where the path determines the object, the gateway refuses what the function refuses
      // for want of that permission; the function may refuse more (ceilings on what is granted).
      const rule = admin.table.match(method, c.path)!.rule;
      if (!rule.public && gateway.allowed && refused) mismatches.push(`${method} ${c.path} ${res.statusCode} ${code}`);
    }
    // Only the checks beyond the endpoint's own permission may refuse what the gateway let through.
    for (const m of mismatches) expect(m, `${who}\n${rows.join('\n')}`).toMatch(/ 403 (scope-escalation|role-ceiling|cannot-assign|self-escalation)$/);
  }, 60_000);

  it('anonymous callers reach no admin endpoint', { timeout: 60_000 }, async () => {
    const w = await adminWorld();
    const admin = compilePolicy(await w.rt.store.loadPolicy('admin'));
    for (const key of Object.keys(ADMIN_ROUTES)) {
      const [method, template] = key.split(' ') as [string, string];
      const path = template.replace(/\{[^}]+\}/g, 'acme');
      const d = decide(admin, undefined, { method, path, headers: {}, query: {} }, w.rt.now());
      expect(d.allowed, key).toBe(false);
    }
  });
});

describe('no edit of another set locks anyone out of the admin API', { timeout: 60_000 }, () => {
  it('a whole-table PUT of default that omits everything (and a gate that holds for nobody) leaves the admin API as it was', async () => {
    const w = await adminWorld();
    const h = buildHandlers(w.rt);
    // A deployment as bootstrap-admin leaves it: a site token, nothing else.
    const boot = await bootstrapAdmin({ client: w.rt.store.db.client, tableName: w.rt.tableName, now: w.rt.clock.seconds });
    const adminBefore = await w.rt.store.loadPolicy('admin');
    const put = (path: string, body: unknown) => h.admin(httpEvent('PUT', path, { body, context: tokenContext(boot.tokenId, `token:${boot.tokenId}`), headers: { 'if-match': '*' } }));
    expect((await put('/policies/sets/default', { routes: [], gate: 'false' })).statusCode).toBe(200);
    expect((await put('/policies/routes', { routes: [] })).statusCode).toBe(200);
    const adminAfter = await w.rt.store.loadPolicy('admin');
    expect(adminAfter.routes).toEqual(adminBefore.routes);
    expect(adminAfter.gate).toBeUndefined();
    // The admin set still lets the operator in everywhere...
    const policy = compilePolicy(adminAfter);
    const principal = (await w.rt.callers.fromContext(tokenContext(boot.tokenId, `token:${boot.tokenId}`))).principal;
    for (const key of Object.keys(ADMIN_ROUTES)) {
      const [method, template] = key.split(' ') as [string, string];
      const path = template.replace(/\{[^}]+\}/g, 'acme').replace('/policies/apis/acme', '/policies/apis/abcdefghij');
      expect(decide(policy, principal, { method, path, headers: {}, query: {} }, w.rt.now()).allowed, key).toBe(true);
    }
    // ...and so does the admin API's authorizer (pinned to the admin set) on the real HTTP path.
    const adminRt = createRuntime(
      { GATEHOUSE_TABLE: w.rt.tableName, GATEHOUSE_ISSUERS: JSON.stringify([w.idp.config]), GATEHOUSE_POLICY_SET: 'admin', GATEHOUSE_LOG_LEVEL: 'error' },
      { client: w.rt.store.db.client, now: w.rt.now, logSink: () => {} },
    );
    const adminHttp = buildHandlers(adminRt).http;
    for (const [method, path, routeKey] of [['PUT', '/policies/routes', 'PUT /policies/routes'], ['GET', '/me', 'GET /me'], ['PUT', '/policies/sets/default', 'PUT /policies/sets/{set}']] as const) {
      const answer = (await adminHttp({
        version: '2.0', type: 'REQUEST', routeArn: `arn:aws:execute-api:us-east-1:123456789012:abcdefghij/$default/${method}${path}`, routeKey, rawPath: path,
        headers: { authorization: `Bearer ${boot.token}` }, requestContext: { http: { method, path, sourceIp: '198.51.100.7' }, stage: '$default' },
      } as never)) as { isAuthorized: boolean };
      expect(answer.isAuthorized, `${method} ${path}`).toBe(true);
    }
  });

  it('no write through the admin API changes the admin set', async () => {
    const w = await adminWorld();
    const before = await w.rt.store.loadPolicy('admin');
    for (const [method, body] of [['PUT', { routes: [] }], ['PATCH', { remove: ['GET /me'] }], ['DELETE', undefined]] as const) {
      const res = await w.call(httpEvent(method, '/policies/sets/admin', { ...(body ? { body } : {}), context: userContext('root'), headers: { 'if-match': '*' } }));
      expect(res.status).toBe(409);
    }
    expect((await w.call(httpEvent('PUT', '/policies/apis/abcdefghij', { body: { set: 'admin' }, context: userContext('root'), headers: { 'if-none-match': '*' } }))).status).toBe(201);
    expect((await w.rt.store.loadPolicy('admin')).routes).toEqual(before.routes);
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { Conflict, type StoreError } from '../../core/errors';
import { createRestAuthorizer } from '../../core/gateway/handlers';
import { MAX_BODY_BYTES } from '../../core/http/api';
import { InvitationRepo } from '../../core/store/dynamo/invitations';
import { httpEvent, userContext } from '../support/events';
import { TestClock } from '../support/runtime';
import { adminWorld } from './admin-support';

type W = Awaited<ReturnType<typeof adminWorld>>;
const ROUTES = [
  { route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'read', org: '{orgId}' },
  { route: 'DELETE /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'delete', org: '{orgId}' },
];

describe('escalation via custom roles', () => {
  let w: W;
  beforeAll(async () => {
    w = await adminWorld();
  });

  it('a site-level role editor cannot redefine its own role to grant more', async () => {
    const now = w.rt.clock.seconds;
    await w.rt.store.policy.putRole({ name: 'site-editor', site: [{ resource: 'role', action: 'update' }, { resource: 'role', action: 'read' }], org: [], member: [], user: [] }, now);
    await w.rt.store.users.putSiteRoles('sed', ['site-editor'], now);
    const before = (await w.rt.store.loadPolicy()).version;
    for (const body of [
      { site: [{ resource: '*', action: '*' }] },
      { site: [{ resource: 'role', action: 'update' }, { resource: 'policy', action: 'update' }] },
      { org: [{ resource: 'project', action: 'delete' }] },
    ]) {
      const res = await w.call(httpEvent('PUT', '/roles/site-editor', { body, context: userContext('sed') }));
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect(res.body.error.code).toBe('role-ceiling');
    }
    expect((await w.rt.store.loadPolicy()).version).toBe(before);
    // Within the ceiling, and negations, are fine.
    const ok = await w.call(httpEvent('PUT', '/roles/site-editor', { body: { site: [{ resource: 'role', action: 'update' }, { resource: 'role', action: 'delete', negate: true }] }, context: userContext('sed') }));
    expect(ok.status).toBe(200);
  });

  it('an org role editor cannot widen the role it holds', async () => {
    const now = w.rt.clock.seconds;
    await w.rt.store.policy.putRole({ name: 'editor', orgId: 'acme', site: [], org: [{ resource: 'role', action: 'update' }, { resource: 'org', action: 'read' }], member: [], user: [] }, now);
    await w.rt.store.users.putMembership('acme', 'eve', ['editor'], now);
    const res = await w.call(httpEvent('PUT', '/orgs/acme/roles/editor', { body: { org: [{ resource: 'role', action: 'update' }, { resource: 'org_role', action: 'assign' }] }, context: userContext('eve') }));
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('role-ceiling');
    const wild = await w.call(httpEvent('PUT', '/orgs/acme/roles/editor', { body: { org: [{ resource: 'project', action: '*' }] }, context: userContext('eve') }));
    expect(wild.body.error.code).toBe('wildcard-not-allowed');
    // Org roles cannot carry site or user permissions at all.
    expect((await w.call(httpEvent('PUT', '/orgs/acme/roles/editor', { body: { user: [] }, context: userContext('ada') }))).status).toBe(400);
    expect((await w.rt.store.loadPolicy()).roles.find((r) => r.name === 'editor')?.org).toHaveLength(2);
  });

  it('a re-created role is not inherited by stale holders of a deleted namesake', async () => {
    const now = w.rt.clock.seconds;
    await w.rt.store.policy.putRole({ name: 'ghost', orgId: 'acme', site: [], org: [{ resource: 'project', action: 'read' }], member: [], user: [] }, now);
    await w.rt.store.users.putMembership('acme', 'casper', ['ghost', 'org-member'], now);
    // A deletion whose clean-up never ran: the role is gone, the name stays on the membership.
    await w.rt.store.policy.deleteRole('ghost', 'acme', now);
    const res = await w.call(httpEvent('PUT', '/orgs/acme/roles/ghost', { body: { org: [{ resource: 'project', action: 'delete' }] }, context: userContext('ada') }));
    expect(res.status).toBe(201);
    expect((await w.rt.store.users.loadUser('casper')).orgs.acme).toEqual(['org-member']);
  });

  it('only the roles a change adds or removes are checked', async () => {
    const now = w.rt.clock.seconds;
    await w.rt.store.policy.putRole({ name: 'hirer', orgId: 'acme', site: [], org: [{ resource: 'org_role', action: 'assign' }, { resource: 'org', action: 'read' }, { resource: 'project', action: 'read' }], member: [], user: [] }, now);
    await w.rt.store.policy.putRole({ name: 'reader', orgId: 'acme', site: [], org: [{ resource: 'project', action: 'read' }], member: [], user: [] }, now);
    await w.rt.store.users.putMembership('acme', 'hank', ['hirer'], now);
    expect((await w.call(httpEvent('PUT', '/orgs/acme/members/pal', { body: { roles: ['org-admin'] }, context: userContext('ada') }))).status).toBe(201);
    // Keeping org-admin (which hank could not grant) while adding reader: allowed.
    const add = await w.call(httpEvent('PUT', '/orgs/acme/members/pal', { body: { roles: ['org-admin', 'reader'] }, context: userContext('hank') }));
    expect(add.status, JSON.stringify(add.body)).toBe(200);
    // Taking org-admin away is checked like granting it.
    const drop = await w.call(httpEvent('PUT', '/orgs/acme/members/pal', { body: { roles: ['reader'] }, context: userContext('hank') }));
    expect(drop.status).toBe(403);
    expect(drop.body.error.code).toBe('role-ceiling');
    expect((await w.call(httpEvent('DELETE', '/orgs/acme/members/pal', { context: userContext('hank') }))).status).toBe(403);
    expect((await w.rt.store.users.loadUser('pal')).orgs.acme).toEqual(['org-admin', 'reader']);
    // Nor may hank give himself more, even a role he could hand to others.
    const self = await w.call(httpEvent('PUT', '/orgs/acme/members/hank', { body: { roles: ['hirer', 'reader'] }, context: userContext('hank') }));
    expect(self.body.error.code).toBe('self-escalation');
  });

  it('site admins cannot promote themselves elsewhere, org admins cannot reach site roles', async () => {
    expect((await w.call(httpEvent('PUT', '/users/ada/site-roles', { body: { roles: ['site-viewer'] }, context: userContext('ada') }))).status).toBe(403);
    expect(await w.rt.store.users.getSiteRoles('ada')).toEqual([]);
    const rootInAcme = await w.call(httpEvent('PUT', '/orgs/acme/members/root', { body: { roles: ['org-admin'] }, context: userContext('root') }));
    expect(rootInAcme.body.error.code).toBe('self-escalation');
  });
});

describe('last site admin, racing', () => {
  it('two concurrent demotions at the store leave exactly one admin', async () => {
    for (let round = 0; round < 3; round++) {
      const w = await adminWorld();
      await w.rt.store.users.putSiteRoles('root2', ['site-admin'], w.rt.clock.seconds);
      const results = await Promise.allSettled([
        w.rt.store.users.putSiteRoles('root', [], w.rt.clock.seconds),
        w.rt.store.users.putSiteRoles('root2', ['site-viewer'], w.rt.clock.seconds),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled' && r.value === true)).toHaveLength(1);
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      // The loser is refused as the last admin, or (DynamoDB's own transaction conflict) fails closed.
      // The loser is refused as the last admin (or, on DynamoDB's own transaction conflict, fails closed with a 503).
      expect(failed.reason instanceof Conflict ? failed.reason.code : (failed.reason as StoreError).status).toSatisfy((v: unknown) => v === 'last-site-admin' || v === 503);
      const admins = [await w.rt.store.users.getSiteRoles('root'), await w.rt.store.users.getSiteRoles('root2')].filter((r) => r.includes('site-admin'));
      expect(admins).toHaveLength(1);
    }
  });

  it('through the API: demoting the last admin is 409, others keep working', async () => {
    const w = await adminWorld();
    const demote = await w.call(httpEvent('PUT', '/users/root/site-roles', { body: { roles: [] }, context: userContext('root') }));
    expect(demote.status).toBe(409);
    expect(demote.body.error.code).toBe('last-site-admin');
    expect(await w.rt.store.users.getSiteRoles('root')).toEqual(['site-admin']);
    // Changing an admin's other roles, keeping site-admin, is no demotion.
    await w.rt.store.policy.putRole({ name: 'stamp', site: [{ resource: 'stamp', action: 'read' }], org: [], member: [], user: [] }, w.rt.clock.seconds);
    expect((await w.call(httpEvent('PUT', '/users/root2/site-roles', { body: { roles: ['site-admin'] }, context: userContext('root') }))).status).toBe(200);
    expect((await w.call(httpEvent('PUT', '/users/root/site-roles', { body: { roles: ['site-admin', 'stamp'] }, context: userContext('root2') }))).status).toBe(200);
    expect((await w.call(httpEvent('PUT', '/users/root/site-roles', { body: { roles: ['site-viewer'] }, context: userContext('root2') }))).status).toBe(200);
    expect((await w.call(httpEvent('PUT', '/users/root2/site-roles', { body: { roles: [] }, context: userContext('root2') }))).body.error.code).toBe('last-site-admin');
    expect(await w.rt.store.users.getSiteRoles('root2')).toEqual(['site-admin']);
  });
});

describe('bad input never reaches the store and is never a 500', () => {
  let w: W;
  beforeAll(async () => {
    w = await adminWorld();
  });
  const huge = { name: 'x'.repeat(MAX_BODY_BYTES + 10) };
  const deep = '('.repeat(500);
  it.each([
    ['POST', '/orgs', { id: 'UPPER', name: 'x' }, 400],
    ['POST', '/orgs', { id: 'a'.repeat(100), name: 'x' }, 400],
    ['POST', '/orgs', { name: 'x', owner: 'me' }, 400],
    ['POST', '/orgs', huge, 400],
    ['POST', '/orgs', ['not', 'an', 'object'], 400],
    ['GET', '/orgs/Acme', undefined, 404],
    ['GET', '/orgs/acme%00', undefined, 404],
    ['DELETE', '/orgs/..', undefined, 404],
    ['GET', '/orgs/acme/members?limit=0', undefined, 400],
    ['PUT', '/orgs/acme/members/a%2Fb', { roles: [] }, 404],
    ['PUT', '/orgs/acme/members/' + 'u'.repeat(300), { roles: [] }, 404],
    ['PUT', '/orgs/acme/members/newbie', { roles: 'org-member' }, 400],
    ['PUT', '/orgs/acme/members/newbie', { roles: ['org-member'], admin: true }, 400],
    ['PUT', '/orgs/acme/members/newbie', { roles: ['site-admin'] }, 400],
    ['PUT', '/orgs/nope/members/newbie', { roles: ['org-member'] }, 404],
    ['PUT', '/users/%E2%98%83/site-roles', { roles: [] }, 404],
    ['PUT', '/users/newbie/site-roles', { roles: ['org-admin'] }, 400],
    ['PUT', '/roles/has%20space', { site: [] }, 400],
    ['PUT', '/roles/ok-name', { site: [{ resource: 'a', action: 'b', negate: 1 }] }, 400],
    ['PUT', '/roles/ok-name', { site: [{ resource: 'a' }] }, 400],
    ['PUT', '/roles/ok-name', { site: 'all' }, 400],
    ['PUT', '/roles/ok-name', { displayName: 7 }, 400],
    ['DELETE', '/roles/has%20space', undefined, 404],
    ['DELETE', '/roles/never-was', undefined, 404],
    ['PUT', '/orgs/acme/roles/x%00y', { org: [] }, 404],
    ['PUT', '/policies/routes', { routes: 'all' }, 400],
    ['PUT', '/policies/routes', { routes: [], extra: 1 }, 400],
    ['PUT', '/policies/routes', { routes: [{ route: 'GET /x', resource: 'x', action: 'read', org: 'BAD ORG!' }] }, 400],
    ['PUT', '/policies/gate', { expression: 5 }, 400],
    ['PUT', '/policies/gate', { expression: deep }, 400],
    ['POST', '/authz/explain', { method: 'GET', path: '/x', userId: 'a', credential: 'b' }, 400],
    ['POST', '/authz/explain', { method: 'GET', path: 'x' }, 400],
    ['POST', '/authz/explain', { method: 'GET', path: '/x', extra: 1 }, 400],
    ['GET', '/audit?since=abc', undefined, 400],
    ['GET', '/audit?limit=1000', undefined, 400],
    ['GET', '/audit?until=5&since=10', undefined, 400],
  ])('%s %s (case %#)', async (method, url, body, status) => {
    const [path, qs] = url.split('?');
    const query = qs ? Object.fromEntries(new URLSearchParams(qs)) : undefined;
    const before = (await w.items()).filter((i) => i.type !== 'audit');
    const res = await w.call(httpEvent(method, decodeURIComponent(path!), { ...(body !== undefined ? { body } : {}), ...(query ? { query } : {}), context: userContext('root') }));
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(typeof res.body.error.code).toBe('string');
    expect((await w.items()).filter((i) => i.type !== 'audit')).toEqual(before);
  });
});

describe('organization deletion cascade', () => {
  it('revokes pending invitations and releases their guards; retried deletes are 404', async () => {
    const w = await adminWorld();
    const now = w.rt.clock.seconds;
    const invitations = new InvitationRepo(w.rt.store.db);
    await w.call(httpEvent('POST', '/orgs', { body: { id: 'gone-soon', name: 'Gone' }, context: userContext('root') }));
    expect(await invitations.create({ id: 'inv-1', orgId: 'gone-soon', email: 'x@y.test', role: 'org-member', status: 'pending', senderId: 'root', createdAt: now, expiresAt: now + 3600 }, now)).toBeUndefined();
    expect((await w.items()).some((i) => i.pk === 'ORG#gone-soon' && String(i.sk).startsWith('PENDINGINVITE#'))).toBe(true);
    expect((await w.call(httpEvent('DELETE', '/orgs/gone-soon', { context: userContext('ada') }))).status).toBe(404);
    expect((await w.call(httpEvent('DELETE', '/orgs/gone-soon', { context: userContext('root') }))).status).toBe(204);
    expect((await invitations.get('inv-1'))?.status).toBe('revoked');
    const left = (await w.items()).filter((i) => i.pk === 'ORG#gone-soon' || i.orgId === 'gone-soon').filter((i) => i.type !== 'audit' && i.type !== 'invitation');
    expect(left).toEqual([]);
    expect((await w.call(httpEvent('DELETE', '/orgs/gone-soon', { context: userContext('root') }))).status).toBe(404);
    // The org can no longer gain members.
    expect((await w.call(httpEvent('PUT', '/orgs/gone-soon/members/late', { body: { roles: ['org-member'] }, context: userContext('root') }))).status).toBe(404);
  });
});

describe('explain output', () => {
  it('has a stable shape and refuses non-admins explaining for others by credential', async () => {
    const w = await adminWorld();
    await w.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: ROUTES }, context: userContext('root') }));
    const version = (await w.rt.store.loadPolicy()).version;
    const allow = await w.call(httpEvent('POST', '/authz/explain', { body: { userId: 'vic', method: 'GET', path: '/orgs/acme/projects/p1' }, context: userContext('root') }));
    expect(allow.body).toMatchObject({ allowed: true, code: 'allow', principalId: 'vic', route: 'GET /orgs/{orgId}/projects/{projectId}', level: 'org', role: 'org-viewer', permission: { resource: '*', action: 'read' }, expressions: [], policyVersion: version });
    const none = await w.call(httpEvent('POST', '/authz/explain', { body: { method: 'GET', path: '/nowhere' }, context: userContext('mo') }));
    expect(none.body).toMatchObject({ allowed: false, code: 'no-route', route: null, level: null, role: null, permission: null, policyVersion: version });
    const jwt = await w.idp.sign('ada', w.rt.clock.seconds);
    const other = await w.call(httpEvent('POST', '/authz/explain', { body: { credential: jwt, method: 'GET', path: '/x' }, context: userContext('mo') }));
    expect(other.status).toBe(403);
    const mine = await w.call(httpEvent('POST', '/authz/explain', { body: { credential: await w.idp.sign('mo', w.rt.clock.seconds), method: 'DELETE', path: '/orgs/acme/projects/p1' }, context: userContext('mo') }));
    expect(mine.body).toMatchObject({ allowed: false, code: 'no-permission' });
    // Site viewers read everything already: they may explain for others too.
    expect((await w.call(httpEvent('POST', '/authz/explain', { body: { userId: 'ada', method: 'GET', path: '/x' }, context: userContext('auditor') }))).status).toBe(200);
  });
});

type Mutation = { action: string; method: string; path: string; body?: unknown; allowedBy: string; deniedBy: string; allowedStatus: number };
const MUTATIONS: Mutation[] = [
  { action: 'org.create', method: 'POST', path: '/orgs', body: { id: 'audited', name: 'A' }, allowedBy: 'root', deniedBy: 'ada', allowedStatus: 201 },
  { action: 'member.put', method: 'PUT', path: '/orgs/acme/members/newbie', body: { roles: ['org-member'] }, allowedBy: 'ada', deniedBy: 'mo', allowedStatus: 201 },
  { action: 'member.delete', method: 'DELETE', path: '/orgs/acme/members/newbie', allowedBy: 'ada', deniedBy: 'vic', allowedStatus: 204 },
  { action: 'site-roles.put', method: 'PUT', path: '/users/sv/site-roles', body: { roles: ['site-viewer'] }, allowedBy: 'root', deniedBy: 'auditor', allowedStatus: 200 },
  { action: 'role.put.site', method: 'PUT', path: '/roles/auditable', body: { site: [] }, allowedBy: 'root', deniedBy: 'ada', allowedStatus: 201 },
  { action: 'role.delete.site', method: 'DELETE', path: '/roles/auditable', allowedBy: 'root', deniedBy: 'ada', allowedStatus: 204 },
  { action: 'role.put.org', method: 'PUT', path: '/orgs/acme/roles/crew', body: { org: [] }, allowedBy: 'ada', deniedBy: 'mo', allowedStatus: 201 },
  { action: 'role.delete.org', method: 'DELETE', path: '/orgs/acme/roles/crew', allowedBy: 'ada', deniedBy: 'mo', allowedStatus: 204 },
  { action: 'policy.routes.put', method: 'PUT', path: '/policies/routes', body: { routes: ROUTES }, allowedBy: 'root', deniedBy: 'auditor', allowedStatus: 200 },
  { action: 'policy.gate.put', method: 'PUT', path: '/policies/gate', body: { expression: 'true' }, allowedBy: 'root', deniedBy: 'ada', allowedStatus: 200 },
  { action: 'org.delete', method: 'DELETE', path: '/orgs/audited', allowedBy: 'root', deniedBy: 'mo', allowedStatus: 204 },
];

describe('audit records for every mutation', () => {
  it('writes one record per attempt, allowed and denied, with a 365-day TTL', async () => {
    const w = await adminWorld();
    for (const m of MUTATIONS) {
      const denied = await w.call(httpEvent(m.method, m.path, { ...(m.body ? { body: m.body } : {}), context: userContext(m.deniedBy) }));
      expect([403, 404], `${m.action} denied`).toContain(denied.status);
      // Policy writes need a precondition (the other endpoints ignore it).
      const ok = await w.call(httpEvent(m.method, m.path, { ...(m.body ? { body: m.body } : {}), context: userContext(m.allowedBy), headers: { 'if-match': '*' } }));
      expect(ok.status, `${m.action}: ${JSON.stringify(ok.body)}`).toBe(m.allowedStatus);
    }
    // A bad body is audited too, as failed with its code.
    await w.call(httpEvent('PUT', '/policies/gate', { headers: { 'if-match': '*' }, body: { expression: 'principal.constructor' }, context: userContext('root') }));
    const records = (await w.items()).filter((i) => i.type === 'audit');
    for (const m of MUTATIONS) {
      const mine = records.filter((r) => r.action === m.action && r.outcome !== 'failed');
      expect(mine.map((r) => `${r.actor}:${r.outcome}`).sort(), m.action).toEqual([`${m.allowedBy}:allowed`, `${m.deniedBy}:denied`].sort());
      for (const r of mine) {
        expect(typeof r.target).toBe('string');
        expect(r.at).toBe(w.rt.clock.seconds);
        expect(r.expiresAt).toBe(r.at + 365 * 86400);
      }
      expect(mine.find((r) => r.outcome === 'denied')!.reason).toMatch(/./);
    }
    expect(records.find((r) => r.action === 'policy.gate.put' && r.outcome === 'failed')).toMatchObject({ reason: 'invalid-expression' });
    // And GET /audit serves them to site readers, newest first.
    const page = await w.call(httpEvent('GET', '/audit', { context: userContext('auditor'), query: { limit: '100' } }));
    expect(page.body.items.length).toBe(records.length);
  });
});

describe('more edges', () => {
  it('explain reads a query string in path for conditions', async () => {
    const w = await adminWorld();
    const routes = [{ route: 'GET /orgs/{orgId}/reports', resource: 'report', action: 'read', org: '{orgId}', condition: 'request.query.env == "prod"' }];
    expect((await w.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes }, context: userContext('root') }))).status).toBe(200);
    // Explained by a policy reader, who sees the rule (vic herself would see codes and results only).
    const no = await w.call(httpEvent('POST', '/authz/explain', { body: { userId: 'vic', method: 'GET', path: '/orgs/acme/reports?env=dev' }, context: userContext('root') }));
    expect(no.body).toMatchObject({ allowed: false, code: 'condition-false', route: 'GET /orgs/{orgId}/reports' });
    const yes = await w.call(httpEvent('POST', '/authz/explain', { body: { userId: 'vic', method: 'GET', path: '/orgs/acme/reports?env=prod' }, context: userContext('root') }));
    expect(yes.body).toMatchObject({ allowed: true, code: 'allow', expressions: [expect.objectContaining({ name: 'condition', result: true })] });
  });

  it('two concurrent creations of one org id: one 201, one 409', async () => {
    const w = await adminWorld();
    const res = await Promise.all([0, 1].map(() => w.call(httpEvent('POST', '/orgs', { body: { id: 'twin', name: 'Twin' }, context: userContext('root') }))));
    expect(res.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(res.find((r) => r.status === 409)!.body.error.code).toBe('org-exists');
  });

  it('role display names are checked', async () => {
    const w = await adminWorld();
    expect((await w.call(httpEvent('PUT', '/roles/named', { body: { displayName: 'bad\u0007name' }, context: userContext('root') }))).status).toBe(400);
    const ok = await w.call(httpEvent('PUT', '/roles/named', { body: { displayName: 'Report readers', site: [{ resource: 'report', action: 'read' }] }, context: userContext('root') }));
    expect(ok.status).toBe(201);
    const list = await w.call(httpEvent('GET', '/roles', { context: userContext('mo') }));
    expect(list.body.items.find((r: { name: string }) => r.name === 'named')).toMatchObject({ displayName: 'Report readers', builtIn: false });
    expect(list.body.items.filter((r: { builtIn: boolean }) => r.builtIn).length).toBeGreaterThanOrEqual(5);
    // Replacing is 200; org role listings show only that org's roles to its members.
    expect((await w.call(httpEvent('PUT', '/roles/named', { body: { site: [] }, context: userContext('root') }))).status).toBe(200);
    expect((await w.call(httpEvent('PUT', '/orgs/acme/roles/crew', { body: { org: [] }, context: userContext('ada') }))).status).toBe(201);
    expect((await w.call(httpEvent('GET', '/orgs/acme/roles', { context: userContext('mo') }))).body.items.map((r: { name: string }) => r.name)).toContain('crew');
    expect((await w.call(httpEvent('GET', '/orgs/acme/roles', { context: userContext('gus') }))).status).toBe(404);
  });

  it('deleting a custom role reaches a warm authorizer within the cache TTL', async () => {
    const clock = new TestClock();
    const w = await adminWorld({ clock });
    await w.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: ROUTES }, context: userContext('root') }));
    expect((await w.call(httpEvent('PUT', '/orgs/acme/roles/deleter', { body: { org: [{ resource: 'project', action: 'delete' }] }, context: userContext('ada') }))).status).toBe(201);
    expect((await w.call(httpEvent('PUT', '/orgs/acme/members/del', { body: { roles: ['deleter'] }, context: userContext('ada') }))).status).toBe(201);
    const rest = createRestAuthorizer(w.rt.gateway);
    const ev = { type: 'TOKEN' as const, authorizationToken: `Bearer ${await w.idp.sign('del', clock.seconds)}`, methodArn: 'arn:aws:execute-api:us-east-1:123456789012:api/prod/DELETE/orgs/acme/projects/p1' };
    expect((await rest(ev)).policyDocument.Statement[0]!.Effect).toBe('Allow');
    expect((await w.call(httpEvent('DELETE', '/orgs/acme/roles/deleter', { context: userContext('ada') }))).status).toBe(204);
    expect((await w.rt.store.users.loadUser('del')).orgs.acme).toEqual([]);
    clock.advance(31);
    expect((await rest(ev)).policyDocument.Statement[0]!.Effect).toBe('Deny');
  });
});

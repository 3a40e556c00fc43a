import { beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_ROLES } from '../../core/rbac/builtin';
import { httpEvent, userContext } from '../support/events';
import { adminWorld } from './admin-support';

type W = Awaited<ReturnType<typeof adminWorld>>;

/** The actor for each built-in role: who holds it (and where). */
const ACTORS: Record<string, string> = { 'site-admin': 'root', 'site-viewer': 'auditor', 'org-admin': 'ada', 'org-member': 'mo', 'org-viewer': 'vic', user: 'nobody' };

type Case = { name: string; method: string; path: (i: number) => string; body: unknown; expect: Record<string, number> };
const CASES: Case[] = [
  { name: 'add a member to acme as org-member', method: 'PUT', path: (i) => `/orgs/acme/members/new-${i}`, body: { roles: ['org-member'] },
    expect: { 'site-admin': 201, 'site-viewer': 403, 'org-admin': 201, 'org-member': 403, 'org-viewer': 403, user: 404 } },
  { name: 'make someone org-admin of acme', method: 'PUT', path: (i) => `/orgs/acme/members/boss-${i}`, body: { roles: ['org-admin'] },
    expect: { 'site-admin': 201, 'site-viewer': 403, 'org-admin': 201, 'org-member': 403, 'org-viewer': 403, user: 404 } },
  { name: 'add a member to globex', method: 'PUT', path: (i) => `/orgs/globex/members/g-${i}`, body: { roles: ['org-viewer'] },
    expect: { 'site-admin': 201, 'site-viewer': 403, 'org-admin': 404, 'org-member': 404, 'org-viewer': 404, user: 404 } },
  { name: 'grant site-viewer', method: 'PUT', path: (i) => `/users/sv-${i}/site-roles`, body: { roles: ['site-viewer'] },
    expect: { 'site-admin': 200, 'site-viewer': 403, 'org-admin': 403, 'org-member': 403, 'org-viewer': 403, user: 403 } },
  { name: 'grant site-admin', method: 'PUT', path: (i) => `/users/sa-${i}/site-roles`, body: { roles: ['site-admin'] },
    expect: { 'site-admin': 200, 'site-viewer': 403, 'org-admin': 403, 'org-member': 403, 'org-viewer': 403, user: 403 } },
  { name: 'create a site custom role', method: 'PUT', path: (i) => `/roles/custom-${i}`, body: { site: [{ resource: 'report', action: 'read' }] },
    expect: { 'site-admin': 201, 'site-viewer': 403, 'org-admin': 403, 'org-member': 403, 'org-viewer': 403, user: 403 } },
  { name: 'create an acme custom role', method: 'PUT', path: (i) => `/orgs/acme/roles/team-${i}`, body: { org: [{ resource: 'project', action: 'read' }] },
    expect: { 'site-admin': 201, 'site-viewer': 403, 'org-admin': 201, 'org-member': 403, 'org-viewer': 403, user: 404 } },
  { name: 'remove vic from acme', method: 'DELETE', path: () => '/orgs/acme/members/vic', body: undefined,
    expect: { 'site-admin': 204, 'site-viewer': 403, 'org-admin': 204, 'org-member': 403, 'org-viewer': 204, user: 404 } },
];

describe('role-assignment matrix', () => {
  it('covers every built-in role in every case (guard)', () => {
    const roles = Object.keys(BUILTIN_ROLES).sort();
    expect(Object.keys(ACTORS).sort()).toEqual(roles);
    for (const c of CASES) expect(Object.keys(c.expect).sort(), c.name).toEqual(roles);
  });

  for (const c of CASES) {
    for (const role of Object.keys(ACTORS)) {
      it(`${c.name}: ${role} -> ${c.expect[role]}`, async () => {
        const w = await adminWorld();
        const res = await w.call(httpEvent(c.method, c.path(1), { ...(c.body ? { body: c.body } : {}), context: userContext(ACTORS[role]!) }));
        expect(res.status, JSON.stringify(res.body)).toBe(c.expect[role]);
      });
    }
  }
});

describe('escalation attempts', () => {
  let w: W;
  beforeAll(async () => {
    w = await adminWorld();
  });

  it('nobody raises their own privileges', async () => {
    const res = await w.call(httpEvent('PUT', '/orgs/globex/members/ada', { body: { roles: ['org-admin'] }, context: userContext('ada') }));
    expect(res.status).toBe(404);
    const self = await w.call(httpEvent('PUT', '/orgs/acme/members/ada', { body: { roles: ['org-admin', 'org-viewer'] }, context: userContext('ada') }));
    expect(self.status).toBe(403);
    expect(self.body.error.code).toBe('self-escalation');
    const site = await w.call(httpEvent('PUT', '/users/root/site-roles', { body: { roles: ['site-admin', 'site-viewer'] }, context: userContext('root') }));
    expect(site.body.error.code).toBe('self-escalation');
  });

  it('an org admin cannot create a custom role with wildcards or permissions they lack', async () => {
    const wild = await w.call(httpEvent('PUT', '/orgs/acme/roles/god', { body: { org: [{ resource: '*', action: '*' }] }, context: userContext('ada') }));
    expect(wild.status).toBe(400);
    expect(wild.body.error.code).toBe('wildcard-not-allowed');
    const siteLevel = await w.call(httpEvent('PUT', '/orgs/acme/roles/sneaky', { body: { site: [{ resource: 'policy', action: 'update' }] }, context: userContext('ada') }));
    expect(siteLevel.status).toBe(400);
    // A custom-role holder with role:update cannot mint permissions it lacks.
    await w.rt.store.policy.putRole({ name: 'role-editor', orgId: 'acme', site: [], org: [{ resource: 'role', action: 'update' }], member: [], user: [] }, w.rt.clock.seconds);
    await w.rt.store.users.putMembership('acme', 'ed', ['role-editor'], w.rt.clock.seconds);
    const mint = await w.call(httpEvent('PUT', '/orgs/acme/roles/minted', { body: { org: [{ resource: 'project', action: 'delete' }] }, context: userContext('ed') }));
    expect(mint.status).toBe(403);
    expect(mint.body.error.code).toBe('role-ceiling');
    // Negative permissions only take away: allowed.
    const neg = await w.call(httpEvent('PUT', '/orgs/acme/roles/no-deletes', { body: { org: [{ resource: 'project', action: 'delete', negate: true }] }, context: userContext('ed') }));
    expect(neg.status).toBe(201);
  });

  it('assigning a custom role that grants more than the assigner holds is refused', async () => {
    await w.rt.store.policy.putRole({ name: 'hirer', orgId: 'acme', site: [], org: [{ resource: 'org_role', action: 'assign' }, { resource: 'org', action: 'read' }], member: [], user: [] }, w.rt.clock.seconds);
    await w.rt.store.users.putMembership('acme', 'hank', ['hirer'], w.rt.clock.seconds);
    const res = await w.call(httpEvent('PUT', '/orgs/acme/members/pal', { body: { roles: ['org-admin'] }, context: userContext('hank') }));
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('role-ceiling');
    expect((await w.call(httpEvent('PUT', '/orgs/acme/members/pal', { body: { roles: ['org-member'] }, context: userContext('hank') }))).status).toBe(201);
  });

  it('built-in names are reserved; bad names and bad permissions are 400', async () => {
    for (const name of ['site-admin', 'org-member', 'user']) {
      const res = await w.call(httpEvent('PUT', `/roles/${name}`, { body: { site: [] }, context: userContext('root') }));
      expect(res.status, name).toBe(409);
    }
    expect((await w.call(httpEvent('PUT', '/roles/Bad_Name', { body: {}, context: userContext('root') }))).status).toBe(400);
    for (const perm of [{ resource: 'Project', action: 'read' }, { resource: 'p', action: 'read', extra: 1 }, { resource: 'p', action: 'read', negate: 'yes' }, 'p:read']) {
      const res = await w.call(httpEvent('PUT', '/roles/checker', { body: { site: [perm] }, context: userContext('root') }));
      expect(res.status, JSON.stringify(perm)).toBe(400);
      expect(res.body.error.code).toBe('invalid-permission');
    }
    expect((await w.call(httpEvent('PUT', '/roles/checker', { body: { site: [], admin: true }, context: userContext('root') }))).status).toBe(400);
  });

  it('deleting a role removes it from every member who had it', async () => {
    await w.call(httpEvent('PUT', '/orgs/acme/roles/temp', { body: { org: [{ resource: 'project', action: 'read' }] }, context: userContext('ada') }));
    expect((await w.call(httpEvent('PUT', '/orgs/acme/members/tina', { body: { roles: ['temp', 'org-viewer'] }, context: userContext('ada') }))).status).toBe(201);
    expect((await w.call(httpEvent('DELETE', '/orgs/acme/roles/temp', { context: userContext('ada') }))).status).toBe(204);
    expect((await w.rt.store.users.loadUser('tina')).orgs.acme).toEqual(['org-viewer']);
    expect((await w.call(httpEvent('DELETE', '/orgs/acme/roles/temp', { context: userContext('ada') }))).status).toBe(404);
    await w.call(httpEvent('PUT', '/roles/stamp', { body: { site: [{ resource: 'stamp', action: 'read' }] }, context: userContext('root') }));
    await w.call(httpEvent('PUT', '/users/sam/site-roles', { body: { roles: ['stamp', 'site-viewer'] }, context: userContext('root') }));
    expect((await w.call(httpEvent('DELETE', '/roles/stamp', { context: userContext('root') }))).status).toBe(204);
    expect(await w.rt.store.users.getSiteRoles('sam')).toEqual(['site-viewer']);
  });

  it('unknown roles are 400 and nothing is written', async () => {
    const res = await w.call(httpEvent('PUT', '/orgs/acme/members/newbie', { body: { roles: ['wizard'] }, context: userContext('ada') }));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('unknown-role');
    expect((await w.rt.store.users.loadUser('newbie')).orgs).toEqual({});
  });
});

describe('last site admin', () => {
  it('cannot be demoted or removed, even by two concurrent demotions', async () => {
    const w = await adminWorld();
    const alone = await w.call(httpEvent('PUT', '/users/root/site-roles', { body: { roles: [] }, context: userContext('root') }));
    expect(alone.status).toBe(409);
    expect(alone.body.error.code).toBe('last-site-admin');
    expect((await w.call(httpEvent('PUT', '/users/root2/site-roles', { body: { roles: ['site-admin'] }, context: userContext('root') }))).status).toBe(200);
    const [a, b] = await Promise.all([
      w.call(httpEvent('PUT', '/users/root2/site-roles', { body: { roles: [] }, context: userContext('root') })),
      w.call(httpEvent('PUT', '/users/root/site-roles', { body: { roles: [] }, context: userContext('root2') })),
    ]);
    // One wins. The other is refused either as the last admin (409) or, when the winner
    // already demoted its caller, because that caller is no admin any more (403).
    const statuses = [a.status, b.status].sort();
    expect(statuses[0]).toBe(200);
    expect([403, 409]).toContain(statuses[1]);
    const admins = [await w.rt.store.users.getSiteRoles('root'), await w.rt.store.users.getSiteRoles('root2')].filter((r) => r.includes('site-admin'));
    expect(admins).toHaveLength(1);
  });
});

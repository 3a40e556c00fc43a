import { describe, expect, it } from 'vitest';
import { BUILTIN_ROLES } from '../../core/rbac/builtin';
import { RoleCatalog } from '../../core/rbac/catalog';
import { decide } from '../../core/rbac/decide';
import type { AuthzObject, Principal, Role } from '../../core/rbac/types';

const ORG = 'acme';
const OTHER = 'globex';
const ME = 'user-1';

/** Every built-in role, as the principal that holds it (in ORG for org roles). */
const holders: Record<string, Principal> = {
  'site-admin': { id: ME, kind: 'user', siteRoles: ['site-admin'], orgs: {} },
  'site-viewer': { id: ME, kind: 'user', siteRoles: ['site-viewer'], orgs: {} },
  'org-admin': { id: ME, kind: 'user', siteRoles: [], orgs: { [ORG]: ['org-admin'] } },
  'org-member': { id: ME, kind: 'user', siteRoles: [], orgs: { [ORG]: ['org-member'] } },
  'org-viewer': { id: ME, kind: 'user', siteRoles: [], orgs: { [ORG]: ['org-viewer'] } },
  user: { id: ME, kind: 'user', siteRoles: [], orgs: {} },
};

type Row = { name: string; object: AuthzObject; expect: Record<string, boolean> };

const rows: Row[] = [
  { name: 'read project in org', object: { type: 'project', action: 'read', orgId: ORG },
    expect: { 'site-admin': true, 'site-viewer': true, 'org-admin': true, 'org-member': false, 'org-viewer': true, user: false } },
  { name: 'update project in org', object: { type: 'project', action: 'update', orgId: ORG },
    expect: { 'site-admin': true, 'site-viewer': false, 'org-admin': true, 'org-member': false, 'org-viewer': false, user: false } },
  { name: 'read project in another org', object: { type: 'project', action: 'read', orgId: OTHER },
    expect: { 'site-admin': true, 'site-viewer': true, 'org-admin': false, 'org-member': false, 'org-viewer': false, user: false } },
  { name: 'delete org', object: { type: 'org', action: 'delete', orgId: ORG },
    expect: { 'site-admin': true, 'site-viewer': false, 'org-admin': true, 'org-member': false, 'org-viewer': false, user: false } },
  { name: 'read own org', object: { type: 'org', action: 'read', orgId: ORG },
    expect: { 'site-admin': true, 'site-viewer': true, 'org-admin': true, 'org-member': true, 'org-viewer': true, user: false } },
  { name: 'list roles in org', object: { type: 'role', action: 'list', orgId: ORG },
    expect: { 'site-admin': true, 'site-viewer': true, 'org-admin': true, 'org-member': true, 'org-viewer': true, user: false } },
  { name: 'read own membership', object: { type: 'membership', action: 'read', orgId: ORG, ownerId: ME },
    expect: { 'site-admin': true, 'site-viewer': true, 'org-admin': true, 'org-member': true, 'org-viewer': true, user: false } },
  { name: "read someone else's membership", object: { type: 'membership', action: 'read', orgId: ORG, ownerId: 'user-2' },
    expect: { 'site-admin': true, 'site-viewer': true, 'org-admin': true, 'org-member': false, 'org-viewer': true, user: false } },
  { name: 'update own membership', object: { type: 'membership', action: 'update', orgId: ORG, ownerId: ME },
    expect: { 'site-admin': true, 'site-viewer': false, 'org-admin': true, 'org-member': false, 'org-viewer': false, user: false } },
  { name: 'create own personal token', object: { type: 'token', action: 'create', ownerId: ME },
    expect: { 'site-admin': true, 'site-viewer': true, 'org-admin': true, 'org-member': true, 'org-viewer': true, user: true } },
  { name: "delete another user's personal token", object: { type: 'token', action: 'delete', ownerId: 'user-2' },
    expect: { 'site-admin': true, 'site-viewer': false, 'org-admin': false, 'org-member': false, 'org-viewer': false, user: false } },
  { name: 'list site tokens', object: { type: 'token', action: 'list' },
    expect: { 'site-admin': true, 'site-viewer': true, 'org-admin': false, 'org-member': false, 'org-viewer': false, user: false } },
  { name: 'write route policy', object: { type: 'policy', action: 'update' },
    expect: { 'site-admin': true, 'site-viewer': false, 'org-admin': false, 'org-member': false, 'org-viewer': false, user: false } },
  { name: 'create org token', object: { type: 'token', action: 'create', orgId: ORG },
    expect: { 'site-admin': true, 'site-viewer': false, 'org-admin': true, 'org-member': false, 'org-viewer': false, user: false } },
];

describe('role × object matrix', () => {
  const builtIns = Object.keys(BUILTIN_ROLES).sort();

  it('covers every built-in role in every case (guard)', () => {
    expect(Object.keys(holders).sort()).toEqual(builtIns);
    for (const row of rows) expect(Object.keys(row.expect).sort(), row.name).toEqual(builtIns);
  });

  const catalog = new RoleCatalog();
  for (const row of rows) {
    for (const role of builtIns) {
      it(`${row.name}: ${role} -> ${row.expect[role] ? 'allow' : 'deny'}`, () => {
        const d = decide(holders[role]!, row.object, catalog);
        expect(d.allowed).toBe(row.expect[role]);
        expect(d.reasons.length).toBeGreaterThan(0);
      });
    }
  }
});

describe('negative permissions and custom roles', () => {
  const noDeploy: Role = { name: 'no-deploy', site: [], org: [{ resource: 'deployment', action: '*', negate: true }], member: [], user: [], orgId: ORG };
  const siteNoAudit: Role = { name: 'no-audit', site: [{ resource: 'audit', action: 'read', negate: true }], org: [], member: [], user: [] };
  const catalog = new RoleCatalog([noDeploy, siteNoAudit]);

  it('a negated org permission beats org-admin in the same org', () => {
    const p: Principal = { id: ME, kind: 'user', siteRoles: [], orgs: { [ORG]: ['org-admin', 'no-deploy'] } };
    const d = decide(p, { type: 'deployment', action: 'create', orgId: ORG }, catalog);
    expect(d).toMatchObject({ allowed: false, code: 'org-negated', level: 'org', role: 'no-deploy' });
    expect(decide(p, { type: 'project', action: 'create', orgId: ORG }, catalog).allowed).toBe(true);
  });

  it('a negated site permission beats site-admin', () => {
    const p: Principal = { id: ME, kind: 'user', siteRoles: ['site-admin', 'no-audit'], orgs: {} };
    expect(decide(p, { type: 'audit', action: 'read' }, catalog)).toMatchObject({ allowed: false, code: 'site-negated' });
  });

  it('site allow wins before org-level negation (levels are ordered)', () => {
    const p: Principal = { id: ME, kind: 'user', siteRoles: ['site-admin'], orgs: { [ORG]: ['no-deploy'] } };
    expect(decide(p, { type: 'deployment', action: 'create', orgId: ORG }, catalog).allowed).toBe(true);
  });

  it("an org's custom role does not apply in another org", () => {
    const evil: Role = { name: 'evil', site: [], org: [{ resource: '*', action: '*' }], member: [], user: [], orgId: OTHER };
    const cat = new RoleCatalog([evil]);
    const p: Principal = { id: ME, kind: 'user', siteRoles: [], orgs: { [ORG]: ['evil'] } };
    expect(decide(p, { type: 'project', action: 'delete', orgId: ORG }, cat).allowed).toBe(false);
  });

  it('a custom role cannot shadow a built-in name', () => {
    const fake: Role = { name: 'org-member', site: [{ resource: '*', action: '*' }], org: [], member: [], user: [] };
    const cat = new RoleCatalog([fake]);
    const p: Principal = { id: ME, kind: 'user', siteRoles: ['org-member'], orgs: {} };
    expect(decide(p, { type: 'policy', action: 'update' }, cat).allowed).toBe(false);
  });

  it('an unknown (deleted) role grants nothing', () => {
    const p: Principal = { id: ME, kind: 'user', siteRoles: ['ghost'], orgs: { [ORG]: ['ghost'] } };
    expect(decide(p, { type: 'project', action: 'update', orgId: ORG }, catalog).allowed).toBe(false);
  });

  it('membership is required for org objects even with a matching member permission', () => {
    const p: Principal = { id: ME, kind: 'user', siteRoles: [], orgs: {} };
    expect(decide(p, { type: 'membership', action: 'read', orgId: ORG, ownerId: ME }, catalog)).toMatchObject({ allowed: false, code: 'not-member' });
  });

  it('orgs named like Object.prototype members are not memberships', () => {
    const p: Principal = { id: ME, kind: 'user', siteRoles: [], orgs: {} };
    for (const org of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(decide(p, { type: 'org', action: 'read', orgId: org }, catalog).allowed).toBe(false);
    }
  });
});

describe('tokens', () => {
  const catalog = new RoleCatalog();
  const owner: Principal = { id: ME, kind: 'user', siteRoles: [], orgs: { [ORG]: ['org-admin'] } };

  it('a personal token narrows its owner, never widens', () => {
    const p: Principal = { ...owner, token: { id: 't1', kind: 'personal', ownerId: ME, scopes: [{ resource: 'project', action: 'read' }] } };
    expect(decide(p, { type: 'project', action: 'read', orgId: ORG }, catalog).allowed).toBe(true);
    expect(decide(p, { type: 'project', action: 'delete', orgId: ORG }, catalog)).toMatchObject({ allowed: false, code: 'scope-denied' });
    // Scope *:* does not give the owner rights it lacks (another org).
    const wide: Principal = { ...owner, token: { id: 't1', kind: 'personal', ownerId: ME, scopes: [{ resource: '*', action: '*' }] } };
    expect(decide(wide, { type: 'project', action: 'read', orgId: OTHER }, catalog).allowed).toBe(false);
    expect(decide(wide, { type: 'policy', action: 'update' }, catalog).allowed).toBe(false);
  });

  it('a demoted owner takes their tokens down with them', () => {
    const demoted: Principal = { id: ME, kind: 'user', siteRoles: [], orgs: { [ORG]: ['org-viewer'] }, token: { id: 't1', kind: 'personal', ownerId: ME } };
    expect(decide(demoted, { type: 'project', action: 'delete', orgId: ORG }, catalog).allowed).toBe(false);
  });

  it('an org token acts only inside its org with its scopes as org permissions', () => {
    const t: Principal = { id: 'token:t2', kind: 'service', siteRoles: [], orgs: { [ORG]: [] }, token: { id: 't2', kind: 'org', orgId: ORG, scopes: [{ resource: 'project', action: 'read' }] } };
    expect(decide(t, { type: 'project', action: 'read', orgId: ORG }, catalog).allowed).toBe(true);
    expect(decide(t, { type: 'project', action: 'update', orgId: ORG }, catalog).allowed).toBe(false);
    expect(decide(t, { type: 'project', action: 'read', orgId: OTHER }, catalog)).toMatchObject({ allowed: false, code: 'not-member' });
    expect(decide(t, { type: 'policy', action: 'read' }, catalog).allowed).toBe(false);
  });

  it('an org token cannot claim another org through its principal orgs map', () => {
    const t: Principal = { id: 'token:t2', kind: 'service', siteRoles: ['site-admin'], orgs: { [OTHER]: ['org-admin'] }, token: { id: 't2', kind: 'org', orgId: ORG } };
    expect(decide(t, { type: 'project', action: 'read', orgId: OTHER }, catalog).allowed).toBe(false);
    expect(decide(t, { type: 'policy', action: 'update' }, catalog).allowed).toBe(false);
  });

  it('a site token holds its scopes at site level', () => {
    const t: Principal = { id: 'token:t3', kind: 'service', siteRoles: [], orgs: {}, token: { id: 't3', kind: 'site', scopes: [{ resource: 'invitation', action: 'create' }] } };
    expect(decide(t, { type: 'invitation', action: 'create', orgId: OTHER }, catalog).allowed).toBe(true);
    expect(decide(t, { type: 'org', action: 'delete', orgId: OTHER }, catalog).allowed).toBe(false);
  });

  it('service tokens own nothing', () => {
    const t: Principal = { id: 'token:t2', kind: 'service', siteRoles: [], orgs: {}, token: { id: 't2', kind: 'org', orgId: ORG, scopes: [] } };
    expect(decide(t, { type: 'token', action: 'delete', ownerId: 'token:t2' }, catalog).allowed).toBe(false);
  });
});

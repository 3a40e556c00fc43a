import { describe, expect, it } from 'vitest';
import { RoleCatalog } from '../../core/rbac/catalog';
import { carriesNegation, covers, droppedPermissions, holds, intersect, roleGrants, tokenCeilingGap, tokenGrants, userGrants, type Reach } from '../../core/rbac/ceiling';
import type { Permission, Principal, Role } from '../../core/rbac/types';
import { storedScopes } from '../../core/rbac/permissions';

const ME = 'u1';
const p = (s: string, negate = false): Permission => {
  const [resource, action] = s.split(':') as [string, string];
  return negate ? { resource, action, negate: true } : { resource, action };
};
const custom: Role[] = [
  { name: 'no-policy-write', site: [p('policy:update', true)], org: [], member: [], user: [] },
  { name: 'no-billing', orgId: 'acme', site: [], org: [p('billing:*', true)], member: [], user: [] },
  { name: 'own-projects', orgId: 'acme', site: [], org: [], member: [p('project:*')], user: [] },
];
const catalog = new RoleCatalog(custom);
const user = (siteRoles: string[], orgs: Record<string, string[]> = {}, scopes?: string[]): Principal => ({
  id: ME, kind: 'user', siteRoles, orgs, ...(scopes ? { token: { id: 'p1', kind: 'personal', ownerId: ME, scopes: scopes.map((s) => p(s)) } } : {}),
});
const service = (kind: 'site' | 'org', scopes?: string[]): Principal => ({
  id: 'token:s1', kind: 'service', siteRoles: [], orgs: kind === 'org' ? { acme: [] } : {},
  token: { id: 's1', kind, ...(kind === 'org' ? { orgId: 'acme' } : {}), ...(scopes ? { scopes: scopes.map((s) => p(s)) } : {}) },
});

/** Every kind of credential the ceiling reasons about. */
const holders: Record<string, Principal> = {
  'site-admin': user(['site-admin']),
  'site-admin without policy:update': user(['site-admin', 'no-policy-write']),
  'org-admin': user([], { acme: ['org-admin'] }),
  'org-admin without billing': user([], { acme: ['org-admin', 'no-billing'] }),
  'org-viewer': user([], { acme: ['org-viewer'] }),
  'own-projects member': user([], { acme: ['own-projects'] }),
  'plain user': user([]),
  'org-admin personal [project:read]': user([], { acme: ['org-admin'] }, ['project:read']),
  'site token [token:*]': service('site', ['token:*']),
  'site token unscoped': service('site'),
  'org token unscoped': service('org'),
  'org token [project:*]': service('org', ['project:*']),
};

type Row = { name: string; permission: string; reach: Reach; expect: Record<string, boolean> };
const rows: Row[] = [
  { name: '*:* site-wide', permission: '*:*', reach: {}, expect: {
    'site-admin': true, 'site-admin without policy:update': false, 'org-admin': false, 'org-admin without billing': false, 'org-viewer': false, 'own-projects member': false,
    'plain user': false, 'org-admin personal [project:read]': false, 'site token [token:*]': false, 'site token unscoped': true, 'org token unscoped': false, 'org token [project:*]': false } },
  { name: '*:* in acme', permission: '*:*', reach: { orgId: 'acme' }, expect: {
    'site-admin': true, 'site-admin without policy:update': false, 'org-admin': true, 'org-admin without billing': false, 'org-viewer': false, 'own-projects member': false,
    'plain user': false, 'org-admin personal [project:read]': false, 'site token [token:*]': false, 'site token unscoped': true, 'org token unscoped': true, 'org token [project:*]': false } },
  { name: '*:read in acme', permission: '*:read', reach: { orgId: 'acme' }, expect: {
    'site-admin': true, 'site-admin without policy:update': true, 'org-admin': true, 'org-admin without billing': false, 'org-viewer': true, 'own-projects member': false,
    'plain user': false, 'org-admin personal [project:read]': false, 'site token [token:*]': false, 'site token unscoped': true, 'org token unscoped': true, 'org token [project:*]': false } },
  { name: 'project:* in acme', permission: 'project:*', reach: { orgId: 'acme' }, expect: {
    'site-admin': true, 'site-admin without policy:update': true, 'org-admin': true, 'org-admin without billing': true, 'org-viewer': false, 'own-projects member': false,
    'plain user': false, 'org-admin personal [project:read]': false, 'site token [token:*]': false, 'site token unscoped': true, 'org token unscoped': true, 'org token [project:*]': true } },
  { name: 'project:* over own objects in acme', permission: 'project:*', reach: { orgId: 'acme', ownerId: ME }, expect: {
    'site-admin': true, 'site-admin without policy:update': true, 'org-admin': true, 'org-admin without billing': true, 'org-viewer': false, 'own-projects member': true,
    'plain user': false, 'org-admin personal [project:read]': false, 'site token [token:*]': false, 'site token unscoped': true, 'org token unscoped': true, 'org token [project:*]': true } },
  { name: 'project:read in acme', permission: 'project:read', reach: { orgId: 'acme' }, expect: {
    'site-admin': true, 'site-admin without policy:update': true, 'org-admin': true, 'org-admin without billing': true, 'org-viewer': true, 'own-projects member': false,
    'plain user': false, 'org-admin personal [project:read]': true, 'site token [token:*]': false, 'site token unscoped': true, 'org token unscoped': true, 'org token [project:*]': true } },
  { name: 'project:read in globex', permission: 'project:read', reach: { orgId: 'globex' }, expect: {
    'site-admin': true, 'site-admin without policy:update': true, 'org-admin': false, 'org-admin without billing': false, 'org-viewer': false, 'own-projects member': false,
    'plain user': false, 'org-admin personal [project:read]': false, 'site token [token:*]': false, 'site token unscoped': true, 'org token unscoped': false, 'org token [project:*]': false } },
  { name: 'policy:update site-wide', permission: 'policy:update', reach: {}, expect: {
    'site-admin': true, 'site-admin without policy:update': false, 'org-admin': false, 'org-admin without billing': false, 'org-viewer': false, 'own-projects member': false,
    'plain user': false, 'org-admin personal [project:read]': false, 'site token [token:*]': false, 'site token unscoped': true, 'org token unscoped': false, 'org token [project:*]': false } },
  { name: 'token:* over own objects', permission: 'token:*', reach: { ownerId: ME }, expect: {
    'site-admin': true, 'site-admin without policy:update': true, 'org-admin': true, 'org-admin without billing': true, 'org-viewer': true, 'own-projects member': true,
    'plain user': true, 'org-admin personal [project:read]': false, 'site token [token:*]': true, 'site token unscoped': true, 'org token unscoped': false, 'org token [project:*]': false } },
  { name: 'token:* over another user’s objects', permission: 'token:*', reach: { ownerId: 'u2' }, expect: {
    'site-admin': true, 'site-admin without policy:update': true, 'org-admin': false, 'org-admin without billing': false, 'org-viewer': false, 'own-projects member': false,
    'plain user': false, 'org-admin personal [project:read]': false, 'site token [token:*]': true, 'site token unscoped': true, 'org token unscoped': false, 'org token [project:*]': false } },
];

describe('holds: credential × grant matrix', () => {
  it('covers every credential in every row (guard)', () => {
    const names = Object.keys(holders).sort();
    for (const row of rows) expect(Object.keys(row.expect).sort(), row.name).toEqual(names);
  });
  for (const row of rows) {
    for (const [who, principal] of Object.entries(holders)) {
      it(`${row.name}: ${who} -> ${row.expect[who]}`, () => {
        expect(holds(principal, p(row.permission), row.reach, catalog)).toBe(row.expect[who]);
      });
    }
  }
});

describe('scope algebra', () => {
  it.each([
    ['*:*', 'project:read', true], ['project:*', 'project:read', true], ['*:read', 'project:read', true], ['project:read', 'project:read', true],
    ['project:read', 'project:*', false], ['*:read', '*:*', false], ['project:*', '*:read', false], ['*:*', '*:*', true], ['a:b', 'c:b', false],
  ])('covers(%s, %s) = %s', (outer, inner, expected) => {
    expect(covers(p(outer), p(inner))).toBe(expected);
  });
  it.each([
    ['*:*', 'project:read', 'project:read'], ['project:*', '*:read', 'project:read'], ['*:read', '*:list', undefined], ['a:*', 'b:*', undefined], ['*:*', '*:*', '*:*'],
  ])('intersect(%s, %s) = %s', (a, b, expected) => {
    const r = intersect(p(a), p(b));
    expect(r ? `${r.resource}:${r.action}` : undefined).toBe(expected);
  });
});

describe('what tokens and roles grant', () => {
  const orgAdmin = user([], { acme: ['org-admin'] });
  it('a personal token holds its owner’s current grants narrowed to its scopes', () => {
    const fmt = (gs: ReturnType<typeof tokenGrants>) => gs.map((g) => `${g.permission.resource}:${g.permission.action}@${g.reach.orgId ?? '-'}/${g.reach.ownerId ?? '-'}`).sort();
    expect(fmt(tokenGrants({ kind: 'personal', ownerId: ME, scopes: [p('project:read')] }, orgAdmin, catalog))).toEqual(['project:read@acme/-']);
    expect(fmt(tokenGrants({ kind: 'personal', ownerId: ME, scopes: [p('token:*')] }, orgAdmin, catalog))).toEqual(['token:*@-/u1', 'token:*@acme/-']);
    // Unscoped: everything the roles grant, the implicit user role and the org floor included.
    expect(fmt(userGrants(orgAdmin, catalog))).toEqual(fmt(tokenGrants({ kind: 'personal', ownerId: ME }, orgAdmin, catalog)));
    expect(fmt(userGrants(orgAdmin, catalog))).toEqual(
      ['*:*@acme/-', 'membership:read@-/u1', 'membership:read@acme/u1', 'org:read@acme/-', 'role:list@acme/-', 'role:read@acme/-', 'token:*@-/u1', 'user:read@-/u1'],
    );
    expect(fmt(tokenGrants({ kind: 'org', orgId: 'acme' }, undefined, catalog))).toEqual(['*:*@acme/-']);
    expect(fmt(tokenGrants({ kind: 'site', scopes: [p('token:read')] }, undefined, catalog))).toEqual(['token:read@-/-']);
  });

  it('a credential of the token’s own owner needs only to cover it with its scopes', () => {
    const jwtOwner = orgAdmin;
    const scoped = user([], { acme: ['org-admin'] }, ['token:update']);
    const wide = user([], { acme: ['org-admin'] }, ['token:update', 'project:*']);
    const unscoped = { kind: 'personal' as const, ownerId: ME };
    const reader = { kind: 'personal' as const, ownerId: ME, scopes: [p('project:read')] };
    expect(tokenCeilingGap(jwtOwner, unscoped, undefined, catalog)).toBeUndefined();
    expect(tokenCeilingGap(scoped, unscoped, undefined, catalog)).toBeDefined();
    expect(tokenCeilingGap(scoped, reader, undefined, catalog)?.permission).toEqual(p('project:read'));
    expect(tokenCeilingGap(wide, reader, undefined, catalog)).toBeUndefined();
    // Someone else must hold the grants themselves, at the owner's objects.
    const other: Principal = { id: 'u2', kind: 'user', siteRoles: [], orgs: { acme: ['org-admin'] } };
    expect(tokenCeilingGap(other, reader, orgAdmin, catalog)).toBeUndefined();
    expect(tokenCeilingGap(other, unscoped, orgAdmin, catalog)?.reach.ownerId).toBe(ME);
    expect(tokenCeilingGap(holders['site-admin']!, unscoped, orgAdmin, catalog)).toBeUndefined();
  });

  it('roles: grants and negations with the reach an actor must hold them at; what a redefinition drops', () => {
    const noBilling = custom[1]!;
    expect(carriesNegation(noBilling, 'acme')).toBe(true);
    expect(carriesNegation(custom[2]!, 'acme')).toBe(false);
    // Only the levels that count where the role is held.
    expect(carriesNegation({ site: [p('x:y', true)], org: [], member: [], user: [] }, 'acme')).toBe(false);
    expect(roleGrants(orgAdmin, noBilling, 'acme')).toEqual([]);
    expect(roleGrants(orgAdmin, noBilling, 'acme', 'negations')).toEqual([{ permission: p('billing:*'), reach: { orgId: 'acme' } }]);
    expect(roleGrants(orgAdmin, custom[2]!, 'acme')).toEqual([{ permission: p('project:*'), reach: { orgId: 'acme', ownerId: ME } }]);
    expect(roleGrants(service('site'), custom[2]!, 'acme')).toEqual([{ permission: p('project:*'), reach: { orgId: 'acme' } }]);
    const before: Role = { name: 'r', site: [p('policy:update', true), p('a:b')], org: [p('c:d', true)], member: [], user: [] };
    const after: Role = { name: 'r', site: [p('policy:read', true), p('a:b')], org: [p('c:d', true)], member: [], user: [] };
    expect(droppedPermissions(before, after, undefined, 'negations')).toEqual({ site: [p('policy:update', true)], org: [], member: [], user: [] });
    expect(droppedPermissions(before, undefined, undefined, 'negations')).toEqual({ site: [p('policy:update', true)], org: [p('c:d', true)], member: [], user: [] });
    expect(droppedPermissions(undefined, after, undefined, 'negations')).toEqual({ site: [], org: [], member: [], user: [] });
  });
});

describe('stored scopes, as the authorizer and the grant ceiling both read them', () => {
  it('parse to permissions; none stored is all of the holder\'s rights; one that no longer parses is nothing at all', () => {
    expect(storedScopes(undefined)).toBeUndefined();
    expect(storedScopes(['project:read', '*:*'])).toEqual([{ resource: 'project', action: 'read' }, { resource: '*', action: '*' }]);
    expect(storedScopes([])).toEqual([]);
    for (const bad of [['project:read', 'Not A Scope'], ['project'], ['a:b:c']]) expect(storedScopes(bad), JSON.stringify(bad)).toEqual([]);
  });
});

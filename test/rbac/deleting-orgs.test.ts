import { describe, expect, it } from 'vitest';
import { RoleCatalog } from '../../core/rbac/catalog';
import { decide } from '../../core/rbac/decide';
import { withoutDeletingOrgs } from '../../core/rbac/deleting-orgs';
import type { Principal } from '../../core/rbac/types';

const catalog = new RoleCatalog();
const orgs = (o: Record<string, string[]>) => Object.assign(Object.create(null) as Record<string, string[]>, o);
const read = (orgId: string) => ({ type: 'project', action: 'read', orgId });
const DELETING = new Set(['doomed']);

const CASES: { name: string; principal: Principal; doomed: boolean; kept?: string }[] = [
  { name: 'a user member of the org', principal: { id: 'u', kind: 'user', siteRoles: [], orgs: orgs({ doomed: ['org-admin'], kept: ['org-viewer'] }) }, doomed: false, kept: 'kept' },
  { name: 'a personal token of a member', principal: { id: 'u', kind: 'user', siteRoles: [], orgs: orgs({ doomed: ['org-admin'] }), token: { id: 't', kind: 'personal', ownerId: 'u' } }, doomed: false },
  { name: 'an org token of the org', principal: { id: 'token:t', kind: 'service', siteRoles: [], orgs: orgs({ doomed: [] }), token: { id: 't', kind: 'org', orgId: 'doomed' } }, doomed: false },
  { name: 'an org token of another org', principal: { id: 'token:k', kind: 'service', siteRoles: [], orgs: orgs({ kept: [] }), token: { id: 'k', kind: 'org', orgId: 'kept' } }, doomed: false, kept: 'kept' },
  { name: 'a site admin (rights held elsewhere stay)', principal: { id: 'root', kind: 'user', siteRoles: ['site-admin'], orgs: orgs({ doomed: ['org-admin'] }) }, doomed: true },
  { name: 'a site token', principal: { id: 'token:s', kind: 'service', siteRoles: [], orgs: orgs({}), token: { id: 's', kind: 'site' } }, doomed: true },
];

describe('withoutDeletingOrgs', () => {
  it.each(CASES)('$name', ({ principal, doomed, kept }) => {
    expect(decide(withoutDeletingOrgs(principal, DELETING), read('doomed'), catalog).allowed).toBe(doomed);
    if (kept) expect(decide(withoutDeletingOrgs(principal, DELETING), read(kept), catalog).allowed).toBe(true);
    expect(Object.keys(withoutDeletingOrgs(principal, DELETING).orgs)).not.toContain('doomed');
    // The principal itself is never changed (only an org token of another org was never allowed there).
    expect(decide(principal, read('doomed'), catalog).allowed).toBe(principal.token?.kind !== 'org' || principal.token.orgId === 'doomed');
  });

  it('returns the same object when nothing is being deleted or nothing changes', () => {
    const p = CASES[0]!.principal;
    expect(withoutDeletingOrgs(p, new Set())).toBe(p);
    expect(withoutDeletingOrgs(p, new Set(['elsewhere']))).toBe(p);
    expect(withoutDeletingOrgs(p, DELETING)).not.toBe(p);
  });
});

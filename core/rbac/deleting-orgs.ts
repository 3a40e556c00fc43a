import type { Principal } from './types';

/**
 * The principal as it stands while the orgs in `deletingOrgIds` are being deleted
 * (DESIGN §4): its memberships in them are dropped, and an org token of one of them
 * keeps no scope, so neither grants anything there while the cascade removes them one
 * by one (or after an interrupted cascade, until it is resumed). Site roles and other
 * orgs are untouched. Pure; returns `principal` itself when nothing changes, so
 * per-principal caches keyed by the object still hit.
 */
export function withoutDeletingOrgs(principal: Principal, deletingOrgIds: ReadonlySet<string>): Principal {
  if (deletingOrgIds.size === 0) return principal;
  const token = principal.token;
  const tokenOrgDeleting = token?.kind === 'org' && token.orgId !== undefined && deletingOrgIds.has(token.orgId);
  const memberOfDeleting = Object.keys(principal.orgs).some((id) => deletingOrgIds.has(id));
  if (!tokenOrgDeleting && !memberOfDeleting) return principal;
  const orgs = Object.create(null) as Record<string, string[]>;
  for (const [id, roles] of Object.entries(principal.orgs)) if (!deletingOrgIds.has(id)) orgs[id] = roles;
  return { ...principal, orgs, ...(tokenOrgDeleting && token ? { token: { ...token, scopes: [] } } : {}) };
}

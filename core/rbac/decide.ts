import { IMPLICIT_USER_ROLE, ORG_FLOOR_ROLE } from './builtin';
import type { RoleCatalog } from './catalog';
import { evaluateLevel, formatScope, scopesAllow } from './permissions';
import type { AuthzObject, Decision, Permission, Principal, Reason } from './types';

type Entry = { permission: Permission; role: string };
type Level = 'site' | 'org' | 'member' | 'user';

const ALL: Permission[] = [{ resource: '*', action: '*' }];

function roleEntries(catalog: RoleCatalog, names: readonly string[], level: Level, orgId?: string): Entry[] {
  const out: Entry[] = [];
  for (const name of names) {
    const role = orgId === undefined ? catalog.siteRole(name) : catalog.orgRole(orgId, name);
    if (!role) continue; // A role deleted since assignment grants nothing.
    for (const permission of role[level]) out.push({ permission, role: name });
  }
  return out;
}

/** Role names a principal holds in an org, the floor role included. */
export function orgRoleNames(principal: Principal, orgId: string): string[] | undefined {
  const roles = Object.prototype.hasOwnProperty.call(principal.orgs, orgId) ? principal.orgs[orgId] : undefined;
  if (!roles) return undefined;
  return roles.includes(ORG_FLOOR_ROLE) ? roles : [ORG_FLOOR_ROLE, ...roles];
}

/** Permissions that apply to `principal` at `level` (for `org`/`member`, inside `orgId`). */
function levelEntries(principal: Principal, catalog: RoleCatalog, level: Level, orgId?: string): Entry[] {
  const token = principal.token;
  if (principal.kind === 'service' && token) {
    // Service tokens hold their scopes as permissions at their own level only.
    const scopes = token.scopes ?? ALL;
    const entries = scopes.map((permission) => ({ permission, role: `token:${token.kind}` }));
    if (token.kind === 'site') return level === 'site' ? entries : [];
    if (token.kind === 'org') return level === 'org' && orgId === token.orgId ? entries : [];
    return [];
  }
  switch (level) {
    case 'site':
      return roleEntries(catalog, principal.siteRoles, 'site');
    case 'user':
      return roleEntries(catalog, [...principal.siteRoles, IMPLICIT_USER_ROLE], 'user');
    case 'org':
    case 'member': {
      const names = orgRoleNames(principal, orgId!) ?? [];
      // Site roles may carry org/member permissions too (e.g. a custom site role).
      return [...roleEntries(catalog, principal.siteRoles, level), ...roleEntries(catalog, names, level, orgId)];
    }
  }
}

function isMember(principal: Principal, orgId: string): boolean {
  if (principal.kind === 'service') return principal.token?.kind === 'org' && principal.token.orgId === orgId;
  return Object.prototype.hasOwnProperty.call(principal.orgs, orgId);
}

/**
 * The role decision (coder's RBAC, DESIGN §4), pure and deterministic in its arguments:
 * 1. site level: a matching negated permission denies; a match allows;
 * 2. object in an org: non-members are denied; org permissions (negated first), then,
 *    for objects the caller owns, member permissions;
 * 3. object in no org: the owner's user permissions.
 * A personal token's decision is its owner's decision AND its scopes.
 */
export function decide(principal: Principal, object: AuthzObject, catalog: RoleCatalog): Decision {
  const reasons: Reason[] = [];
  const base = decideRoles(principal, object, catalog, reasons);
  const token = principal.token;
  if (!base.allowed || !token || token.kind !== 'personal' || token.scopes === undefined) return base;
  if (scopesAllow(token.scopes, object.type, object.action)) {
    reasons.push({ step: 'scope', detail: `token scopes allow ${object.type}:${object.action}` });
    return { ...base, reasons };
  }
  reasons.push({ step: 'scope', detail: `token scopes [${token.scopes.map(formatScope).join(', ')}] do not include ${object.type}:${object.action}` });
  return { allowed: false, code: 'scope-denied', level: base.level, reasons };
}

function decideRoles(principal: Principal, object: AuthzObject, catalog: RoleCatalog, reasons: Reason[]): Decision {
  const { type, action, orgId, ownerId } = object;
  const site = evaluateLevel(levelEntries(principal, catalog, 'site'), type, action);
  if (site) {
    const allowed = site.effect === 'allow';
    reasons.push({ step: 'site', detail: `${site.role} ${allowed ? 'grants' : 'negates'} ${formatScope(site.permission)}` });
    return { allowed, code: allowed ? 'site-allow' : 'site-negated', level: 'site', role: site.role, permission: site.permission, reasons };
  }
  reasons.push({ step: 'site', detail: 'no site permission matched' });

  const owns = ownerId !== undefined && principal.kind === 'user' && ownerId === principal.id;
  if (orgId !== undefined) {
    if (!isMember(principal, orgId)) {
      reasons.push({ step: 'org', detail: `not a member of ${orgId}` });
      return { allowed: false, code: 'not-member', level: 'org', reasons };
    }
    const org = evaluateLevel(levelEntries(principal, catalog, 'org', orgId), type, action);
    if (org) {
      const allowed = org.effect === 'allow';
      reasons.push({ step: 'org', detail: `${org.role} ${allowed ? 'grants' : 'negates'} ${formatScope(org.permission)} in ${orgId}` });
      return { allowed, code: allowed ? 'org-allow' : 'org-negated', level: 'org', role: org.role, permission: org.permission, reasons };
    }
    reasons.push({ step: 'org', detail: `no org permission matched in ${orgId}` });
    if (owns) {
      const member = evaluateLevel(levelEntries(principal, catalog, 'member', orgId), type, action);
      if (member) {
        const allowed = member.effect === 'allow';
        reasons.push({ step: 'member', detail: `${member.role} ${allowed ? 'grants' : 'negates'} ${formatScope(member.permission)} on own object` });
        return { allowed, code: allowed ? 'member-allow' : 'member-negated', level: 'member', role: member.role, permission: member.permission, reasons };
      }
      reasons.push({ step: 'member', detail: 'no member permission matched' });
    }
    return { allowed: false, code: 'no-permission', level: 'org', reasons };
  }

  if (owns) {
    const user = evaluateLevel(levelEntries(principal, catalog, 'user'), type, action);
    if (user) {
      const allowed = user.effect === 'allow';
      reasons.push({ step: 'user', detail: `${user.role} ${allowed ? 'grants' : 'negates'} ${formatScope(user.permission)} on own object` });
      return { allowed, code: allowed ? 'user-allow' : 'user-negated', level: 'user', role: user.role, permission: user.permission, reasons };
    }
    reasons.push({ step: 'user', detail: 'no user permission matched' });
  }
  return { allowed: false, code: 'no-permission', level: 'none', reasons };
}

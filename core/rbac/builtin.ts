import type { Role } from './types';

const all = { resource: '*', action: '*' };
const readAll = [
  { resource: '*', action: 'read' },
  { resource: '*', action: 'list' },
];

/**
 * Built-in roles (DESIGN §4). Their names are reserved. Site roles act site-wide;
 * org roles act inside the membership's org.
 */
export const BUILTIN_ROLES: Readonly<Record<string, Role>> = Object.freeze({
  'site-admin': { name: 'site-admin', displayName: 'Site admin', builtIn: true, site: [all], org: [], member: [], user: [] },
  'site-viewer': { name: 'site-viewer', displayName: 'Site viewer', builtIn: true, site: readAll, org: [], member: [], user: [] },
  'org-admin': { name: 'org-admin', displayName: 'Organization admin', builtIn: true, site: [], org: [all], member: [], user: [] },
  'org-member': {
    name: 'org-member',
    displayName: 'Organization member',
    builtIn: true,
    site: [],
    org: [
      { resource: 'org', action: 'read' },
      { resource: 'role', action: 'list' },
      { resource: 'role', action: 'read' },
    ],
    member: [{ resource: 'membership', action: 'read' }],
    user: [],
  },
  'org-viewer': { name: 'org-viewer', displayName: 'Organization viewer', builtIn: true, site: [], org: readAll, member: [], user: [] },
  /**
   * Implicit role of every user principal: rights over what it owns (its personal
   * tokens, its own profile and memberships). No site or org rights.
   */
  user: {
    name: 'user',
    displayName: 'User',
    builtIn: true,
    site: [],
    org: [],
    member: [],
    user: [
      { resource: 'token', action: '*' },
      { resource: 'user', action: 'read' },
      { resource: 'membership', action: 'read' },
    ],
  },
});

/** Site-level built-in roles (assignable with `PUT /users/{id}/site-roles`). */
export const SITE_BUILTIN_ROLES = ['site-admin', 'site-viewer'] as const;
/** Org-level built-in roles (assignable in memberships). */
export const ORG_BUILTIN_ROLES = ['org-admin', 'org-member', 'org-viewer'] as const;
/** Every member holds this role in its org: the floor. */
export const ORG_FLOOR_ROLE = 'org-member';
/** Every user principal holds this role implicitly. */
export const IMPLICIT_USER_ROLE = 'user';

export function isBuiltinRoleName(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(BUILTIN_ROLES, name);
}

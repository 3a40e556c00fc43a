import { Forbidden, InvalidInput } from '../errors';
import { ORG_BUILTIN_ROLES, SITE_BUILTIN_ROLES } from './builtin';
import type { RoleCatalog } from './catalog';
import { decide } from './decide';
import type { Permission, Principal, Role } from './types';

/** Where a role is assigned: site-wide, or in one org's membership. */
export type AssignmentScope = { scope: 'site' } | { scope: 'org'; orgId: string };

/** The role definition a name refers to in a scope, or undefined when it cannot be held there. */
export function assignableRole(catalog: RoleCatalog, where: AssignmentScope, name: string): Role | undefined {
  if (where.scope === 'site') {
    if ((SITE_BUILTIN_ROLES as readonly string[]).includes(name)) return catalog.siteRole(name);
    const role = catalog.siteRole(name);
    return role && !role.builtIn && !role.orgId ? role : undefined;
  }
  if ((ORG_BUILTIN_ROLES as readonly string[]).includes(name)) return catalog.orgRole(where.orgId, name);
  return catalog.orgRoles(where.orgId).find((r) => r.name === name);
}

/** Checks that every named role exists in the scope (400 `unknown-role` otherwise). */
export function validateRoleNames(catalog: RoleCatalog, where: AssignmentScope, names: readonly string[]): void {
  for (const name of names) {
    if (!assignableRole(catalog, where, name)) {
      throw new InvalidInput('unknown-role', `unknown ${where.scope === 'site' ? 'site' : 'org'} role ${JSON.stringify(name)}`);
    }
  }
}

/**
 * Role-assignment rules (as coder's `assignRoles`): only the roles a change adds or
 * removes are checked, and for each one the actor must
 * 1. be allowed to assign in that scope (`site_role:assign` site-wide, `org_role:assign`
 *    in the org: site admins anywhere, org admins in their own org), and
 * 2. hold every permission the role grants (the ceiling: nobody hands out more than
 *    they have; negated permissions only take away and are not checked).
 * Nobody may add roles to themselves.
 * Throws `Forbidden` with a stable code; returns when the change is allowed.
 */
export function checkAssignment(
  actor: Principal,
  catalog: RoleCatalog,
  where: AssignmentScope,
  change: { added: readonly string[]; removed: readonly string[]; targetUserId?: string },
): void {
  if (change.added.length === 0 && change.removed.length === 0) return;
  if (change.targetUserId !== undefined && change.added.length > 0 && actor.kind === 'user' && change.targetUserId === actor.id) {
    throw new Forbidden('self-escalation', 'you cannot add roles to yourself');
  }
  const orgId = where.scope === 'org' ? where.orgId : undefined;
  const assign = decide(actor, { type: where.scope === 'site' ? 'site_role' : 'org_role', action: 'assign', ...(orgId ? { orgId } : {}) }, catalog);
  if (!assign.allowed) throw new Forbidden('cannot-assign', `not allowed to assign ${where.scope} roles${orgId ? ` in ${orgId}` : ''}`);
  for (const name of [...change.added, ...change.removed]) {
    const role = assignableRole(catalog, where, name);
    if (!role) throw new InvalidInput('unknown-role', `unknown ${where.scope} role ${JSON.stringify(name)}`);
    // Member and user permissions apply to what the holder owns: the actor must hold
    // them over its own objects; site and org permissions, outright.
    const levels: [Permission[], boolean][] =
      where.scope === 'site' ? [[role.site, false], [role.org, false], [role.member, true], [role.user, true]] : [[role.org, false], [role.member, true]];
    for (const [perms, owned] of levels) {
      for (const p of perms) {
        if (p.negate) continue;
        const object = { type: p.resource, action: p.action, ...(orgId ? { orgId } : {}), ...(owned && actor.kind === 'user' ? { ownerId: actor.id } : {}) };
        if (!decide(actor, object, catalog).allowed) {
          throw new Forbidden('role-ceiling', `role ${name} grants ${p.resource}:${p.action}, which you do not hold`);
        }
      }
    }
  }
}

import { Forbidden, InvalidInput } from '../errors';
import { ORG_BUILTIN_ROLES, SITE_BUILTIN_ROLES } from './builtin';
import type { RoleCatalog } from './catalog';
import { carriesNegation, firstUnheld, roleGrants, type CredentialRoot, type Grant } from './ceiling';
import { decide } from './decide';
import type { Principal, Role } from './types';

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

/** A change of one user's roles in one scope, as `checkAssignment` judges it. */
export interface RoleChange {
  added: readonly string[];
  removed: readonly string[];
  /** Whose roles change (absent for invitations: the invitee is not known yet). */
  targetUserId?: string;
  /**
   * The person behind the acting credential (see `CredentialRoot`). Defaults to the actor
   * itself for a user principal and to nobody for a service principal; callers pass the
   * root of a service token so that a token one made counts as oneself.
   */
  actorRoot?: CredentialRoot;
  /** The whole membership goes (leaving or removal): nothing held stays to widen. */
  membershipEnds?: boolean;
}

/**
 * Role-assignment rules (as coder's `assignRoles`): only the roles a change adds or
 * removes are checked.
 * 1. Nobody widens their own rights, whatever credential of their own they act with
 *    (a JWT, a personal token, or a service token they made): they may not add roles
 *    to themselves, nor remove one that carries a negation, since lifting a negation
 *    widens (`self-escalation`). Removing a role that only grants is taking away.
 * 2. The actor may assign in that scope (`site_role:assign` site-wide, `org_role:assign`
 *    in the org: site admins anywhere, org admins in their own org).
 * 3. The ceiling: the actor holds every permission a role it adds grants, and every
 *    permission of a role it takes from someone else (taking away is checked like
 *    granting). Lifting a negation hands back what it took, so removing a role that
 *    carries one needs what it negates too, unless the whole membership goes.
 *    Wildcards are held only in full (see `holds`).
 * Throws `Forbidden` with a stable code; returns when the change is allowed.
 */
export function checkAssignment(actor: Principal, catalog: RoleCatalog, where: AssignmentScope, change: RoleChange): void {
  if (change.added.length === 0 && change.removed.length === 0) return;
  const orgId = where.scope === 'org' ? where.orgId : undefined;
  const role = (name: string): Role => {
    const r = assignableRole(catalog, where, name);
    if (!r) throw new InvalidInput('unknown-role', `unknown ${where.scope} role ${JSON.stringify(name)}`);
    return r;
  };
  const lifting = change.membershipEnds ? [] : change.removed.filter((name) => carriesNegation(role(name), orgId));
  let self = false;
  if (change.targetUserId !== undefined) {
    const root: CredentialRoot = change.actorRoot ?? (actor.kind === 'user' ? { kind: 'user', userId: actor.id } : { kind: 'none' });
    if (root.kind === 'unknown' && (change.added.length > 0 || lifting.length > 0)) {
      throw new Forbidden('token-provenance-unknown', 'this token was made by a token that no longer exists, so it cannot be told apart from its maker: it may only take roles away');
    }
    self = root.kind === 'user' && root.userId === change.targetUserId;
    if (self && change.added.length > 0) throw new Forbidden('self-escalation', 'you cannot add roles to yourself');
    if (self && lifting.length > 0) throw new Forbidden('self-escalation', `removing ${lifting.join(', ')} would lift a restriction on yourself`);
  }
  const assign = decide(actor, { type: where.scope === 'site' ? 'site_role' : 'org_role', action: 'assign', ...(orgId ? { orgId } : {}) }, catalog);
  if (!assign.allowed) throw new Forbidden('cannot-assign', `not allowed to assign ${where.scope} roles${orgId ? ` in ${orgId}` : ''}`);
  const checks: { name: string; verb: string; grants: Grant[] }[] = [];
  for (const name of change.added) checks.push({ name, verb: 'grants', grants: roleGrants(actor, role(name), orgId) });
  for (const name of change.removed) {
    // Taking a role from oneself only takes away (lifting a negation was refused above).
    if (!self) checks.push({ name, verb: 'grants', grants: roleGrants(actor, role(name), orgId) });
    if (lifting.includes(name)) checks.push({ name, verb: 'takes away', grants: roleGrants(actor, role(name), orgId, 'negations') });
  }
  for (const { name, verb, grants } of checks) {
    const gap = firstUnheld(actor, grants, catalog);
    if (gap) throw new Forbidden('role-ceiling', `role ${name} ${verb} ${gap.permission.resource}:${gap.permission.action}, which you do not hold`);
  }
}

import { BUILTIN_ROLES, IMPLICIT_USER_ROLE } from './builtin';
import type { RoleCatalog } from './catalog';
import { decide, orgRoleNames } from './decide';
import type { AuthzObject, Permission, Principal, Role, TokenKind } from './types';

/**
 * The ceiling (DESIGN §4, "nothing may hand out more than it holds"), in one place:
 * what a token or a role can do, written as grants, and whether a credential holds
 * all of them. Token creation and rotation, role assignment, role definition and
 * invitations all ask the questions below.
 */

/** Where a grant takes effect: site-wide (neither field), in an org, over one user's own objects, or both. */
export type Reach = Pick<AuthzObject, 'orgId' | 'ownerId'>;

/** A permission and where it takes effect. */
export interface Grant {
  permission: Permission;
  reach: Reach;
}

/** What a token is, for the ceiling: its kind, where it acts, and its scopes (undefined: all its holder's rights). */
export interface TokenShape {
  kind: TokenKind;
  orgId?: string;
  ownerId?: string;
  scopes?: readonly Permission[];
}

/** The wildcard permission: what an unscoped service token holds. */
const ALL: Permission = Object.freeze({ resource: '*', action: '*' });

/** A name no permission can carry (names are lower-case or `*`): it stands for every name none of them mentions. */
const UNNAMED = '#unnamed';

/** True when `outer` matches every (resource, action) that `inner` matches. A wildcard is covered only by a wildcard. */
export function covers(outer: Permission, inner: Permission): boolean {
  return (outer.resource === '*' || outer.resource === inner.resource) && (outer.action === '*' || outer.action === inner.action);
}

/** The (resource, action) pairs both permissions match, as one permission; undefined when they share none. */
export function intersect(a: Permission, b: Permission): Permission | undefined {
  const part = (x: string, y: string) => (x === '*' ? y : y === '*' || y === x ? x : undefined);
  const resource = part(a.resource, b.resource);
  const action = part(a.action, b.action);
  return resource !== undefined && action !== undefined ? { resource, action } : undefined;
}

/** Every permission `decide` can consult for `principal`: its roles' (all levels, every org it is in) and its token's scopes. */
function consulted(principal: Principal, catalog: RoleCatalog): Permission[] {
  const token = principal.token;
  if (principal.kind === 'service') return [...(token?.scopes ?? [ALL])];
  const roles: (Role | undefined)[] = [BUILTIN_ROLES[IMPLICIT_USER_ROLE], ...principal.siteRoles.map((n) => catalog.siteRole(n))];
  for (const orgId of Object.keys(principal.orgs)) for (const n of orgRoleNames(principal, orgId) ?? []) roles.push(catalog.orgRole(orgId, n));
  const out: Permission[] = [...(token?.scopes ?? [])];
  for (const r of roles) if (r) out.push(...r.site, ...r.org, ...r.member, ...r.user);
  return out;
}

/**
 * Answers "does this principal hold p at reach", exactly, for wildcards too. The decision
 * for (resource, action) depends only on which permissions match it, so it is the same for
 * every name no consulted permission mentions: checking each mentioned name plus one
 * unnamed stand-in covers every object `p` names. So a wildcard is held only through a
 * covering wildcard, and not when a negation carves something out of it.
 */
class Holder {
  private readonly resources: string[];
  private readonly actions: string[];

  constructor(
    readonly principal: Principal,
    private readonly catalog: RoleCatalog,
  ) {
    const perms = consulted(principal, catalog);
    this.resources = [...new Set(perms.map((p) => p.resource).filter((n) => n !== '*')), UNNAMED];
    this.actions = [...new Set(perms.map((p) => p.action).filter((n) => n !== '*')), UNNAMED];
  }

  holds(p: Permission, reach: Reach): boolean {
    const resources = p.resource === '*' ? this.resources : [p.resource];
    const actions = p.action === '*' ? this.actions : [p.action];
    for (const type of resources) {
      for (const action of actions) {
        if (!decide(this.principal, { type, action, ...reach }, this.catalog).allowed) return false;
      }
    }
    return true;
  }
}

/** True when `principal` may do everything `p` names (wildcards included) at `reach`. */
export function holds(principal: Principal, p: Permission, reach: Reach, catalog: RoleCatalog): boolean {
  return new Holder(principal, catalog).holds(p, reach);
}

/** The first grant `principal` does not hold, or undefined when it holds them all. */
export function firstUnheld(principal: Principal, grants: readonly Grant[], catalog: RoleCatalog): Grant | undefined {
  if (grants.length === 0) return undefined;
  const holder = new Holder(principal, catalog);
  return grants.find((g) => !holder.holds(g.permission, g.reach));
}

/**
 * True when `principal` holds scope `p` somewhere its token would act (site-wide, in one
 * of its orgs, or over what it owns). For a personal token's requested scopes: that
 * token acts as its owner AND its scopes, so what matters is that the scope lies inside
 * the creating credential's scopes (a `*` only through a `*`) and names a right the owner
 * has somewhere; whatever the owner is denied stays denied to the new token.
 */
export function holdsSomewhere(principal: Principal, p: Permission, catalog: RoleCatalog): boolean {
  const own = principal.kind === 'user' ? [{ ownerId: principal.id }] : [];
  const reaches: Reach[] = [{}, ...own];
  for (const orgId of Object.keys(principal.orgs)) reaches.push({ orgId }, ...own.map((o) => ({ ...o, orgId })));
  return reaches.some((reach) => decide(principal, { type: p.resource, action: p.action, ...reach }, catalog).allowed);
}

/**
 * Everything a user's current roles grant (negations only take away and are left out),
 * each where it applies: site permissions site-wide; org and member permissions (of its
 * site roles and of its roles in each org, the floor role included) in each org it is a
 * member of; user permissions over its own objects.
 */
export function userGrants(user: Principal, catalog: RoleCatalog): Grant[] {
  const out: Grant[] = [];
  const add = (perms: readonly Permission[], reach: Reach) => {
    for (const p of perms) if (!p.negate) out.push({ permission: { resource: p.resource, action: p.action }, reach });
  };
  const orgs = Object.keys(user.orgs);
  const siteRoles = [BUILTIN_ROLES[IMPLICIT_USER_ROLE], ...user.siteRoles.map((n) => catalog.siteRole(n))];
  for (const role of siteRoles) {
    if (!role) continue;
    add(role.site, {});
    add(role.user, { ownerId: user.id });
    for (const orgId of orgs) {
      add(role.org, { orgId });
      add(role.member, { orgId, ownerId: user.id });
    }
  }
  for (const orgId of orgs) {
    for (const name of orgRoleNames(user, orgId) ?? []) {
      const role = catalog.orgRole(orgId, name);
      if (!role) continue;
      add(role.org, { orgId });
      add(role.member, { orgId, ownerId: user.id });
    }
  }
  return out;
}

/**
 * Everything a token can do, as grants. A site token holds its scopes site-wide, an org
 * token in its org; a personal token holds its owner's current grants narrowed to its
 * scopes (`owner` is that owner; required for personal tokens).
 */
export function tokenGrants(token: TokenShape, owner: Principal | undefined, catalog: RoleCatalog): Grant[] {
  const scopes = token.scopes ?? [ALL];
  if (token.kind === 'site') return scopes.map((permission) => ({ permission, reach: {} }));
  if (token.kind === 'org') return scopes.map((permission) => ({ permission, reach: { orgId: token.orgId ?? '' } }));
  if (!owner || owner.id !== token.ownerId) throw new Error('tokenGrants: a personal token needs its owner');
  const out = new Map<string, Grant>();
  for (const g of userGrants(owner, catalog)) {
    for (const s of scopes) {
      const permission = intersect(g.permission, s);
      if (permission) out.set(JSON.stringify([permission.resource, permission.action, g.reach.orgId, g.reach.ownerId]), { permission, reach: g.reach });
    }
  }
  return [...out.values()];
}

/**
 * The creation ceiling: the first thing `token` could do that `actor` does not hold now,
 * or undefined when the actor holds all of it. A credential of the token's own owner acts
 * as that owner too (the owner's roles AND its scopes), so there only its scopes matter:
 * an unscoped one holds everything the token can do; a scoped one must cover each grant.
 * `owner` is the personal token's owner (ignored for the owner's own credentials).
 */
export function tokenCeilingGap(actor: Principal, token: TokenShape, owner: Principal | undefined, catalog: RoleCatalog): Grant | undefined {
  if (token.kind === 'personal' && actor.kind === 'user' && actor.id === token.ownerId) {
    const mine = actor.token?.scopes;
    if (mine === undefined) return undefined;
    return tokenGrants(token, actor, catalog).find((g) => !mine.some((s) => !s.negate && covers(s, g.permission)));
  }
  return firstUnheld(actor, tokenGrants(token, owner, catalog), catalog);
}

/** The levels of a role that apply where it is held: org roles act at org and member level only. */
export type RoleLevel = 'site' | 'org' | 'member' | 'user';

/** The levels that count for a role held site-wide (`orgId` undefined) or in an org. */
export function roleLevels(orgId: string | undefined): RoleLevel[] {
  return orgId === undefined ? ['site', 'org', 'member', 'user'] : ['org', 'member'];
}

/**
 * Where `actor` must hold a permission that a role defined or assigned in `orgId` (or
 * site-wide) carries at `level`: org permissions of an org role in that org; member
 * permissions over the actor's own objects there; a site role's site, org and member
 * permissions site-wide (they apply in every org its holder joins); user permissions
 * over the actor's own objects. A service actor owns nothing, so it needs them outright.
 */
export function roleReach(actor: Principal, level: RoleLevel, orgId: string | undefined): Reach {
  const own = actor.kind === 'user' ? { ownerId: actor.id } : {};
  if (orgId !== undefined) return level === 'member' ? { orgId, ...own } : { orgId };
  return level === 'user' ? own : {};
}

/**
 * A role's permissions as grants the actor must hold to hand it out. With `negations`,
 * its negated permissions instead, as grants: lifting a negation (removing the role from
 * someone, redefining or deleting it) hands back what it took away.
 */
export function roleGrants(actor: Principal, role: Pick<Role, RoleLevel>, orgId: string | undefined, which: 'grants' | 'negations' = 'grants'): Grant[] {
  const out: Grant[] = [];
  for (const level of roleLevels(orgId)) {
    for (const p of role[level]) {
      if ((which === 'negations') === (p.negate === true)) out.push({ permission: { resource: p.resource, action: p.action }, reach: roleReach(actor, level, orgId) });
    }
  }
  return out;
}

/** True when the role takes anything away where it is held. */
export function carriesNegation(role: Pick<Role, RoleLevel>, orgId: string | undefined): boolean {
  return roleLevels(orgId).some((level) => role[level].some((p) => p.negate === true));
}

/** Permissions of `before` (at the levels that count) that `after` no longer has, level by level; `which` as in `roleGrants`. */
export function droppedPermissions(
  before: Pick<Role, RoleLevel> | undefined,
  after: Pick<Role, RoleLevel> | undefined,
  orgId: string | undefined,
  which: 'grants' | 'negations',
): Pick<Role, RoleLevel> {
  const key = (p: Permission) => `${p.resource}:${p.action}:${p.negate === true}`;
  const out: Pick<Role, RoleLevel> = { site: [], org: [], member: [], user: [] };
  if (!before) return out;
  for (const level of roleLevels(orgId)) {
    const kept = new Set((after?.[level] ?? []).map(key));
    out[level] = before[level].filter((p) => (which === 'negations') === (p.negate === true) && !kept.has(key(p)));
  }
  return out;
}

/**
 * Who stands behind a credential, for "nobody widens their own rights": a user (a JWT, a
 * personal token, or a service token some user made, directly or through tokens made by
 * tokens); nobody (a token an operator wrote outside the API); or unknown (the chain that
 * made it cannot be followed), which refuses anything that could widen.
 */
export type CredentialRoot = { kind: 'user'; userId: string } | { kind: 'none' } | { kind: 'unknown' };

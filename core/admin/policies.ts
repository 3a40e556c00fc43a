import { z } from 'zod';
import type { Authorizer } from '../authorizer/authorize';
import { compilePolicy } from '../authorizer/policy';
import { Conflict, Forbidden, InvalidInput, NotFound } from '../errors';
import { parseBody, parseQuery, pageFields, type ApiRequest, type ApiResponse, type Endpoint } from '../http/api';
import { validateExpression } from '../policy/expression';
import { validateRouteRules, type RouteRule } from '../policy/routes';
import { BUILTIN_ROLES, isBuiltinRoleName, ORG_BUILTIN_ROLES, SITE_BUILTIN_ROLES } from '../rbac/builtin';
import type { RoleCatalog } from '../rbac/catalog';
import { decide } from '../rbac/decide';
import { droppedPermissions, firstUnheld, holds, roleGrants, roleLevels, roleReach, type RoleLevel } from '../rbac/ceiling';
import { formatScope, parsePermission } from '../rbac/permissions';
import type { Permission, Principal, Role } from '../rbac/types';
import { ORG_ID_RE } from '../store/dynamo/orgs';
import { keys } from '../store/schema';
import { credentialRoot } from '../tokens/provenance';
import { type AdminDeps, audited, freshCatalog, nowSeconds } from './deps';

const ROLE_NAME_RE = /^[a-z][a-z0-9-]{1,62}$/;
const displayName = z.string().trim().min(1).max(100, 'at most 100 characters').regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters');
const permList = z.array(z.unknown()).max(100, 'at most 100 permissions');
const siteRoleBody = z.strictObject({ displayName: displayName.optional(), site: permList.optional(), org: permList.optional(), member: permList.optional(), user: permList.optional() });
const orgRoleBody = z.strictObject({ displayName: displayName.optional(), org: permList.optional(), member: permList.optional() });
const routesBody = z.strictObject({ routes: z.array(z.unknown()) });
const gateBody = z.strictObject({ expression: z.string().nullable() });
const explainBody = z.strictObject({
  credential: z.string().min(1).max(8192).optional(),
  userId: z.string().regex(/^[A-Za-z0-9._:@|+-]{1,256}$/).optional(),
  method: z.string().regex(/^[A-Z]{1,10}$/, 'an upper-case HTTP method'),
  path: z.string().min(1).max(2048).regex(/^\//, 'must start with /'),
});
const auditQuery = z.strictObject({
  since: z.string().regex(/^\d{1,12}$/, 'epoch seconds').transform(Number).optional(),
  until: z.string().regex(/^\d{1,12}$/, 'epoch seconds').transform(Number).optional(),
  actor: z.string().max(300).optional(),
  ...pageFields,
});
const DAY = 86400;

/** Warnings for an expression: what a cached authorizer answer cannot honour. */
function expressionWarnings(route: string, text: string): { route: string; code: string; message: string }[] {
  const v = validateExpression(text);
  const out: { route: string; code: string; message: string }[] = [];
  if (v.readsUncachedRequestData) {
    out.push({ route, code: 'condition-not-cacheable', message: `reads ${v.reads.filter((r) => r.startsWith('request')).join(', ')}, which is not in the authorizer cache key: such requests are decided live only; use an authorizer TTL of 0 for this route` });
  }
  if (v.timeDependent) out.push({ route, code: 'condition-time-dependent', message: 'reads now: a cached answer may outlive the condition by the authorizer TTL' });
  return out;
}

function routeWarnings(routes: RouteRule[]) {
  return routes.flatMap((r) => (r.condition ? expressionWarnings(r.route, r.condition) : []));
}

/** Custom roles, route policies and the gate, explain, and the audit log (DESIGN §6, Admin). */
export class PolicyAdmin {
  constructor(private readonly deps: AdminDeps & { authorizer: Authorizer }) {}

  routes(): Record<string, Endpoint> {
    return {
      'GET /roles': (r) => this.listSiteRoles(r),
      'PUT /roles/{name}': (r) => this.putRole(r, undefined),
      'DELETE /roles/{name}': (r) => this.deleteRole(r, undefined),
      'GET /orgs/{orgId}/roles': (r) => this.listOrgRoles(r),
      'PUT /orgs/{orgId}/roles/{name}': (r) => this.putRole(r, r.params.orgId ?? ''),
      'DELETE /orgs/{orgId}/roles/{name}': (r) => this.deleteRole(r, r.params.orgId ?? ''),
      'GET /policies/routes': (r) => this.getRoutes(r),
      'PUT /policies/routes': (r) => this.putRoutes(r),
      'GET /policies/gate': (r) => this.getGate(r),
      'PUT /policies/gate': (r) => this.putGate(r),
      'POST /authz/explain': (r) => this.explain(r),
      'GET /audit': (r) => this.audit(r),
    };
  }

  private siteLevel(caller: Principal, catalog: RoleCatalog, type: string, action: string): boolean {
    const d = decide(caller, { type, action }, catalog);
    return d.allowed && d.level === 'site';
  }

  private roleView(r: Role) {
    return { name: r.name, displayName: r.displayName ?? null, builtIn: r.builtIn === true, ...(r.orgId ? { orgId: r.orgId } : {}), site: r.site, org: r.org, member: r.member, user: r.user };
  }

  async listSiteRoles(_req: ApiRequest): Promise<ApiResponse> {
    const catalog = await freshCatalog(this.deps);
    const builtIn = [...SITE_BUILTIN_ROLES, ...ORG_BUILTIN_ROLES].map((n) => this.roleView(BUILTIN_ROLES[n]!));
    return { status: 200, body: { items: [...builtIn, ...catalog.siteRoles().map((r) => this.roleView(r))] } };
  }

  async listOrgRoles(req: ApiRequest): Promise<ApiResponse> {
    const catalog = await freshCatalog(this.deps);
    const orgId = req.params.orgId ?? '';
    if (!ORG_ID_RE.test(orgId) || !decide(req.caller.principal, { type: 'role', action: 'list', orgId }, catalog).allowed) throw new NotFound();
    if (!(await this.deps.store.orgs.getOrg(orgId))) throw new NotFound();
    const builtIn = ORG_BUILTIN_ROLES.map((n) => this.roleView(BUILTIN_ROLES[n]!));
    return { status: 200, body: { items: [...builtIn, ...catalog.orgRoles(orgId).map((r) => this.roleView(r))] } };
  }

  /**
   * Creates or replaces a custom role. Site roles: site admins. Org roles: whoever may
   * update roles in that org; without site-level rights, no wildcards. The ceiling applies
   * to everyone, site admins included (who pass it by holding everything): nobody defines
   * a role granting more than they hold, so nobody raises their own rights by redefining
   * a role they hold. Adding a negation only takes away; dropping one hands back what it
   * took, so it needs the negated permission and is never done by its own holder (see
   * `checkRoleWidening`).
   */
  async putRole(req: ApiRequest, orgId: string | undefined): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const name = req.params.name ?? '';
    return audited(this.deps, { actor: caller, action: orgId ? 'role.put.org' : 'role.put.site', target: `${orgId ? `org:${orgId.slice(0, 64)}/` : ''}role:${name.slice(0, 64)}` }, async () => {
      const catalog = await freshCatalog(this.deps);
      if (orgId !== undefined) {
        if (!ORG_ID_RE.test(orgId) || !(await this.deps.store.orgs.getOrg(orgId))) throw new NotFound();
        if (!decide(caller, { type: 'role', action: 'update', orgId }, catalog).allowed) {
          if (decide(caller, { type: 'org', action: 'read', orgId }, catalog).allowed) throw new Forbidden('cannot-manage-roles');
          throw new NotFound();
        }
      } else if (!this.siteLevel(caller, catalog, 'role', 'update')) throw new Forbidden('cannot-manage-roles', 'site roles are managed by site admins');
      if (!ROLE_NAME_RE.test(name)) throw new InvalidInput('invalid-role-name', 'role names are lower-case letters, digits and dashes, 2..63 characters');
      if (isBuiltinRoleName(name)) throw new Conflict('reserved-role-name', `${name} is a built-in role`);
      const body = orgId !== undefined ? parseBody(orgRoleBody, req.body) : parseBody(siteRoleBody, req.body);
      const level = (k: RoleLevel): Permission[] =>
        ((body as Record<string, unknown[] | undefined>)[k] ?? []).map((p, i) => parsePermission(p, `${k}[${i}]`));
      const role: Role = { name, ...(body.displayName ? { displayName: body.displayName } : {}), site: level('site'), org: level('org'), member: level('member'), user: level('user'), ...(orgId ? { orgId } : {}) };
      const orgAdminOnly = orgId !== undefined && !this.siteLevel(caller, catalog, 'role', 'update');
      for (const lvl of roleLevels(orgId)) {
        role[lvl].forEach((p, i) => {
          if (p.negate) return; // negations only take away
          if (orgAdminOnly && (p.resource === '*' || p.action === '*')) throw new InvalidInput('wildcard-not-allowed', `${lvl}[${i}]: org admins may not grant wildcards`);
          if (!holds(caller, p, roleReach(caller, lvl, orgId), catalog)) {
            throw new Forbidden('role-ceiling', `${lvl}[${i}]: you do not hold ${p.resource}:${p.action}${orgId ? ` in ${orgId}` : ' site-wide'}`);
          }
        });
      }
      const before = orgId !== undefined ? catalog.orgRoles(orgId).find((r) => r.name === name) : catalog.siteRoles().find((r) => r.name === name);
      await this.checkRoleWidening(req, catalog, orgId, before, role);
      const now = nowSeconds(this.deps);
      // A new role must not be inherited by stale holders of a deleted namesake (a role
      // deletion whose clean-up was interrupted): strip the name first.
      if (!before) await this.stripHolders(name, orgId, now);
      const version = await this.deps.store.policy.putRole(role, now);
      return { status: before ? 200 : 201, body: { ...this.roleView(role), version } };
    });
  }

  /**
   * A change of role `before` into `after` (undefined: deleted) widens its holders when it
   * drops a negation or adds a grant. Then:
   * - the person behind the credential (its root, see `credentialRoot`) must not hold the
   *   role, or must already hold every added grant and lift no negation: nobody widens
   *   their own rights, whichever credential of theirs acts (`self-escalation`); a token
   *   whose maker cannot be traced may not widen an existing role at all;
   * - the actor must hold every negated permission it drops: lifting a negation hands back
   *   what it took (`role-ceiling`; added grants were checked against the ceiling already).
   */
  private async checkRoleWidening(req: ApiRequest, catalog: RoleCatalog, orgId: string | undefined, before: Role | undefined, after: Role | undefined): Promise<void> {
    if (!before) return; // a new role has no holders to widen
    const caller = req.caller.principal;
    const lifted = roleGrants(caller, droppedPermissions(before, after, orgId, 'negations'), orgId, 'negations');
    const added = droppedPermissions(after, before, orgId, 'grants');
    const adds = roleLevels(orgId).some((l) => added[l].length > 0);
    if (lifted.length === 0 && !adds) return;
    const root = await credentialRoot(this.deps.store.tokens, req.caller);
    if (root.kind === 'unknown') {
      throw new Forbidden('token-provenance-unknown', 'this token was made by a token that no longer exists, so it cannot be told apart from its maker: it may not widen an existing role');
    }
    if (root.kind === 'user') {
      const record = caller.kind === 'user' && caller.id === root.userId ? caller : await this.deps.store.users.loadUser(root.userId);
      const person: Principal = { id: root.userId, kind: 'user', siteRoles: record.siteRoles, orgs: record.orgs };
      const holdsRole =
        orgId !== undefined
          ? Object.prototype.hasOwnProperty.call(person.orgs, orgId) && person.orgs[orgId]!.includes(before.name)
          : person.siteRoles.includes(before.name) || Object.values(person.orgs).some((roles) => roles.includes(before.name));
      if (holdsRole) {
        if (lifted.length > 0) throw new Forbidden('self-escalation', `you hold ${before.name}: lifting its negation of ${formatScope(lifted[0]!.permission)} would widen your own rights`);
        const gap = firstUnheld(person, roleGrants(person, added, orgId), catalog);
        if (gap) throw new Forbidden('self-escalation', `you hold ${before.name}: granting ${formatScope(gap.permission)} through it would widen your own rights`);
      }
    }
    const gap = firstUnheld(caller, lifted, catalog);
    if (gap) throw new Forbidden('role-ceiling', `${before.name} takes away ${formatScope(gap.permission)}, which you do not hold${orgId ? ` in ${orgId}` : ' site-wide'}`);
  }

  /** Deletes a custom role, then takes it from every member who had it. Lifting its negations is checked as in `putRole`. */
  async deleteRole(req: ApiRequest, orgId: string | undefined): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const name = req.params.name ?? '';
    return audited(this.deps, { actor: caller, action: orgId ? 'role.delete.org' : 'role.delete.site', target: `${orgId ? `org:${orgId.slice(0, 64)}/` : ''}role:${name.slice(0, 64)}` }, async () => {
      const catalog = await freshCatalog(this.deps);
      if (orgId !== undefined) {
        if (!ORG_ID_RE.test(orgId) || !(await this.deps.store.orgs.getOrg(orgId))) throw new NotFound();
        if (!decide(caller, { type: 'role', action: 'delete', orgId }, catalog).allowed) {
          if (decide(caller, { type: 'org', action: 'read', orgId }, catalog).allowed) throw new Forbidden('cannot-manage-roles');
          throw new NotFound();
        }
      } else if (!this.siteLevel(caller, catalog, 'role', 'delete')) throw new Forbidden('cannot-manage-roles');
      if (isBuiltinRoleName(name)) throw new Conflict('reserved-role-name', `${name} is a built-in role`);
      if (!ROLE_NAME_RE.test(name)) throw new NotFound();
      const before = orgId !== undefined ? catalog.orgRoles(orgId).find((r) => r.name === name) : catalog.siteRoles().find((r) => r.name === name);
      await this.checkRoleWidening(req, catalog, orgId, before, undefined);
      const now = nowSeconds(this.deps);
      // The role goes first: from the next policy version on, it grants nothing.
      if (!(await this.deps.store.policy.deleteRole(name, orgId, now))) throw new NotFound();
      await this.stripHolders(name, orgId, now);
      return { status: 204 };
    });
  }

  /** Takes role `name` from everyone holding it (members of `orgId`, or site-role holders). */
  private async stripHolders(name: string, orgId: string | undefined, now: number): Promise<void> {
    if (orgId !== undefined) {
      for (const m of await this.deps.store.orgs.gsi1Items(keys.orgMembers(orgId))) {
        if (Array.isArray(m.roles) && (m.roles as unknown[]).includes(name)) await this.dropMemberRole(orgId, String(m.userId), name, now);
      }
      return;
    }
    let cursor: string | undefined;
    do {
      const page = await this.deps.store.users.listSiteRoleHolders(cursor);
      for (const h of page.items) if (h.siteRoles.includes(name)) await this.dropSiteRole(h.userId, name, now);
      cursor = page.nextCursor;
    } while (cursor);
  }

  /** Takes role `name` from one membership; re-reads and retries when it changed meanwhile. */
  private async dropMemberRole(orgId: string, userId: string, name: string, now: number): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = (await this.deps.store.users.loadUser(userId)).orgs[orgId];
      if (!current || !current.includes(name)) return;
      const outcome = await this.deps.store.users.writeMembership(orgId, userId, current.filter((r) => r !== name), now, current);
      if (outcome !== 'changed') return;
    }
    throw new Conflict('membership-changed', `could not remove ${name} from ${userId}: it keeps changing; delete the role again`);
  }

  /** Takes site role `name` from one profile; re-reads and retries when it changed meanwhile. */
  private async dropSiteRole(userId: string, name: string, now: number): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.deps.store.users.getSiteRoles(userId);
      if (!current.includes(name)) return;
      if (await this.deps.store.users.putSiteRoles(userId, current.filter((r) => r !== name), now, current)) return;
    }
    throw new Conflict('site-roles-changed', `could not remove ${name} from ${userId}: it keeps changing; delete the role again`);
  }

  async getRoutes(req: ApiRequest): Promise<ApiResponse> {
    const catalog = await freshCatalog(this.deps);
    if (!this.siteLevel(req.caller.principal, catalog, 'policy', 'read')) throw new Forbidden('cannot-read-policy');
    const snapshot = await this.deps.store.loadPolicy();
    return { status: 200, body: { routes: snapshot.routes, version: snapshot.version, warnings: routeWarnings(snapshot.routes) } };
  }

  async putRoutes(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'policy.routes.put', target: 'policies/routes' }, async () => {
      const catalog = await freshCatalog(this.deps);
      if (!this.siteLevel(caller, catalog, 'policy', 'update')) throw new Forbidden('cannot-update-policy');
      const body = parseBody(routesBody, req.body);
      // Every route and condition is validated before anything is written.
      const routes = validateRouteRules(body.routes, { validateCondition: (t) => void validateExpression(t) });
      const version = await this.deps.store.policy.putRoutes(routes, nowSeconds(this.deps), caller.id);
      return { status: 200, body: { routes, version, warnings: routeWarnings(routes) } };
    });
  }

  async getGate(req: ApiRequest): Promise<ApiResponse> {
    const catalog = await freshCatalog(this.deps);
    if (!this.siteLevel(req.caller.principal, catalog, 'policy', 'read')) throw new Forbidden('cannot-read-policy');
    const snapshot = await this.deps.store.loadPolicy();
    return { status: 200, body: { expression: snapshot.gate ?? null, version: snapshot.version, warnings: snapshot.gate ? expressionWarnings('gate', snapshot.gate) : [] } };
  }

  async putGate(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'policy.gate.put', target: 'policies/gate' }, async () => {
      const catalog = await freshCatalog(this.deps);
      if (!this.siteLevel(caller, catalog, 'policy', 'update')) throw new Forbidden('cannot-update-policy');
      const body = parseBody(gateBody, req.body);
      if (body.expression !== null) validateExpression(body.expression);
      const version = await this.deps.store.policy.putGate(body.expression, nowSeconds(this.deps), caller.id);
      return { status: 200, body: { expression: body.expression, version, warnings: body.expression ? expressionWarnings('gate', body.expression) : [] } };
    });
  }

  /** The decision the authorizer would make, and why. Reads only: no access-log writes. */
  async explain(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const body = parseBody(explainBody, req.body);
    if (body.credential !== undefined && body.userId !== undefined) throw new InvalidInput('invalid-field', 'give credential or userId, not both');
    const catalog = await freshCatalog(this.deps);
    const admin = this.siteLevel(caller, catalog, 'policy', 'read');
    let principal: Principal;
    if (body.credential !== undefined) {
      let resolved;
      try {
        resolved = await this.deps.callers.resolve(body.credential);
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'unauthenticated';
        if ((err as { status?: number }).status === 401) {
          const policyVersion = (await this.deps.store.loadPolicy()).version;
          return { status: 200, body: { allowed: false, code, status: 401, principalId: null, route: null, level: null, role: null, permission: null, expressions: [], reasons: [{ step: 'credential', detail: code }], policyVersion } };
        }
        throw err;
      }
      principal = resolved.principal;
    } else if (body.userId !== undefined) {
      const user = await this.deps.store.users.loadUser(body.userId);
      principal = { id: body.userId, kind: 'user', siteRoles: user.siteRoles, orgs: user.orgs };
    } else principal = caller;
    const self = principal.id === caller.id && principal.kind === caller.kind;
    if (!admin && !self) throw new Forbidden('explain-others', 'only site admins may explain decisions for others');
    const policy = compilePolicy(await this.deps.store.loadPolicy());
    // A query string in `path` becomes the request's query (conditions may read it).
    const q = body.path.indexOf('?');
    const path = q < 0 ? body.path : body.path.slice(0, q);
    const query = Object.create(null) as Record<string, string>;
    if (q >= 0) for (const [k, v] of new URLSearchParams(body.path.slice(q + 1))) query[k] = v;
    const match = policy.table.match(body.method, path);
    const request = { method: body.method, path, headers: Object.create(null) as Record<string, string>, query };
    const { allowed, explanation } = this.deps.authorizer.evaluate(policy, principal, request, match);
    // A stable shape: every field present, null when the decision never got that far.
    return { status: 200, body: { allowed, principalId: principal.id, route: null, level: null, role: null, permission: null, ...explanation } };
  }

  /** Audit records, newest first, across the day partitions of [since, until]. */
  async audit(req: ApiRequest): Promise<ApiResponse> {
    const catalog = await freshCatalog(this.deps);
    if (!this.siteLevel(req.caller.principal, catalog, 'audit', 'read')) throw new Forbidden('cannot-read-audit');
    const q = parseQuery(auditQuery, req.query);
    const now = nowSeconds(this.deps);
    const until = q.until ?? now;
    const since = q.since ?? until - 7 * DAY;
    if (since > until) throw new InvalidInput('invalid-query', 'since must not be after until');
    if (until - since > 31 * DAY) throw new InvalidInput('invalid-query', 'at most 31 days at a time');
    const limit = q.limit ?? 50;
    let day = new Date(until * 1000).toISOString().slice(0, 10);
    let inner: string | undefined;
    if (q.cursor) {
      try {
        const c = JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')) as { d?: unknown; c?: unknown };
        if (typeof c.d !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(c.d) || (c.c !== undefined && typeof c.c !== 'string')) throw new Error('shape');
        day = c.d;
        inner = c.c as string | undefined;
      } catch {
        throw new InvalidInput('invalid-cursor', 'invalid cursor');
      }
    }
    const firstDay = new Date(since * 1000).toISOString().slice(0, 10);
    const items: unknown[] = [];
    let next: string | undefined;
    while (day >= firstDay) {
      const page = await this.deps.audit.listDay(day, { since, until, limit: limit - items.length, ...(inner ? { cursor: inner } : {}) });
      items.push(...page.items.filter((i) => !q.actor || i.actor === q.actor || i.actor.startsWith(`${q.actor} `)));
      if (page.nextCursor) {
        if (items.length >= limit) {
          next = Buffer.from(JSON.stringify({ d: day, c: page.nextCursor })).toString('base64url');
          break;
        }
        inner = page.nextCursor;
        continue;
      }
      inner = undefined;
      day = new Date(Date.parse(`${day}T00:00:00Z`) - DAY * 1000).toISOString().slice(0, 10);
      if (items.length >= limit) {
        if (day >= firstDay) next = Buffer.from(JSON.stringify({ d: day })).toString('base64url');
        break;
      }
    }
    return { status: 200, body: { items, ...(next ? { nextCursor: next } : {}) } };
  }
}

import { z } from 'zod';
import type { Authorizer } from '../authorizer/authorize';
import { compilePolicy } from '../authorizer/policy';
import { Conflict, Forbidden, InvalidInput, NotFound } from '../errors';
import { parseBody, parseQuery, pageFields, type ApiRequest, type ApiResponse, type Endpoint } from '../http/api';
import { validateExpression } from '../policy/expression';
import { BUILTIN_ROLES, isBuiltinRoleName, ORG_BUILTIN_ROLES, SITE_BUILTIN_ROLES } from '../rbac/builtin';
import type { RoleCatalog } from '../rbac/catalog';
import { decide } from '../rbac/decide';
import { parsePermission } from '../rbac/permissions';
import type { Permission, Principal, Role } from '../rbac/types';
import { ORG_ID_RE } from '../store/dynamo/orgs';
import { keys } from '../store/schema';
import { type AdminDeps, audited, freshCatalog, nowSeconds } from './deps';
import { PolicySetAdmin } from './policy-sets';

const ROLE_NAME_RE = /^[a-z][a-z0-9-]{1,62}$/;
const displayName = z.string().trim().min(1).max(100, 'at most 100 characters').regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters');
const permList = z.array(z.unknown()).max(100, 'at most 100 permissions');
const siteRoleBody = z.strictObject({ displayName: displayName.optional(), site: permList.optional(), org: permList.optional(), member: permList.optional(), user: permList.optional() });
const orgRoleBody = z.strictObject({ displayName: displayName.optional(), org: permList.optional(), member: permList.optional() });
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

/** Custom roles, policies (policy sets: `PolicySetAdmin`), explain, and the audit log (DESIGN §6, Admin). */
export class PolicyAdmin {
  private readonly sets: PolicySetAdmin;

  constructor(private readonly deps: AdminDeps & { authorizer: Authorizer }) {
    this.sets = new PolicySetAdmin(deps);
  }

  routes(): Record<string, Endpoint> {
    return {
      'GET /roles': (r) => this.listSiteRoles(r),
      'PUT /roles/{name}': (r) => this.putRole(r, undefined),
      'DELETE /roles/{name}': (r) => this.deleteRole(r, undefined),
      'GET /orgs/{orgId}/roles': (r) => this.listOrgRoles(r),
      'PUT /orgs/{orgId}/roles/{name}': (r) => this.putRole(r, r.params.orgId ?? ''),
      'DELETE /orgs/{orgId}/roles/{name}': (r) => this.deleteRole(r, r.params.orgId ?? ''),
      ...this.sets.routes(),
      'POST /authz/explain': (r) => this.explain(r),
      'GET /audit': (r) => this.audit(r),
    };
  }

  private siteLevel(caller: Principal, catalog: RoleCatalog, type: string, action: string): boolean {
    const d = decide(caller, { type, action }, catalog);
    return d.allowed && d.level === 'site';
  }

  /**
   * Whether `caller` holds `p` where a role defining it at `lvl` would grant it: in the org
   * for org roles (member permissions over its own objects there); site-wide for site roles
   * (user permissions may also be held over its own objects).
   */
  private holds(caller: Principal, catalog: RoleCatalog, p: Permission, lvl: 'site' | 'org' | 'member' | 'user', orgId: string | undefined): boolean {
    const obj = { type: p.resource, action: p.action };
    const own = caller.kind === 'user' ? { ownerId: caller.id } : {};
    if (orgId !== undefined) return decide(caller, { ...obj, orgId, ...(lvl === 'member' ? own : {}) }, catalog).allowed;
    const site = decide(caller, obj, catalog);
    if (site.allowed && site.level === 'site') return true;
    return lvl === 'user' && caller.kind === 'user' && decide(caller, { ...obj, ...own }, catalog).allowed;
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
   * update roles in that org; without site-level rights, no wildcards and only
   * permissions the caller holds there (negations are free: they only take away).
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
      const level = (k: 'site' | 'org' | 'member' | 'user'): Permission[] =>
        ((body as Record<string, unknown[] | undefined>)[k] ?? []).map((p, i) => parsePermission(p, `${k}[${i}]`));
      const role: Role = { name, ...(body.displayName ? { displayName: body.displayName } : {}), site: level('site'), org: level('org'), member: level('member'), user: level('user'), ...(orgId ? { orgId } : {}) };
      // The ceiling applies to everyone, site admins included (who pass it by holding
      // everything): nobody defines a role granting more than they hold, so nobody can
      // raise their own rights by redefining a role they already hold.
      const orgAdminOnly = orgId !== undefined && !this.siteLevel(caller, catalog, 'role', 'update');
      const levels: ['site' | 'org' | 'member' | 'user', Permission[]][] =
        orgId !== undefined ? [['org', role.org], ['member', role.member]] : [['site', role.site], ['org', role.org], ['member', role.member], ['user', role.user]];
      for (const [lvl, perms] of levels) {
        perms.forEach((p, i) => {
          if (p.negate) return; // negations only take away
          if (orgAdminOnly && (p.resource === '*' || p.action === '*')) throw new InvalidInput('wildcard-not-allowed', `${lvl}[${i}]: org admins may not grant wildcards`);
          if (!this.holds(caller, catalog, p, lvl, orgId)) {
            throw new Forbidden('role-ceiling', `${lvl}[${i}]: you do not hold ${p.resource}:${p.action}${orgId ? ` in ${orgId}` : ' site-wide'}`);
          }
        });
      }
      const now = nowSeconds(this.deps);
      const exists = orgId !== undefined ? catalog.orgRoles(orgId).some((r) => r.name === name) : catalog.siteRoles().some((r) => r.name === name);
      // A new role must not be inherited by stale holders of a deleted namesake (a role
      // deletion whose clean-up was interrupted): strip the name first.
      if (!exists) await this.stripHolders(name, orgId, now);
      const version = await this.deps.store.policy.putRole(role, now);
      return { status: exists ? 200 : 201, body: { ...this.roleView(role), version } };
    });
  }

  /** Deletes a custom role, then takes it from every member who had it. */
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
      if (await this.deps.store.users.putSiteRoles(userId, current.filter((r) => r !== name), now)) return;
    }
    throw new Conflict('site-roles-changed', `could not remove ${name} from ${userId}: it keeps changing; delete the role again`);
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

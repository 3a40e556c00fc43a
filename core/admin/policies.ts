import { createHash } from 'node:crypto';
import { z } from 'zod';
import { decide as decideRequest, type Decision } from '../authorizer/decide';
import { compilePolicy, DEFAULT_SET, type CompiledPolicy, type ExpressionSlot } from '../authorizer/policy';
import { TokenRejected, type ResolvedCredential } from '../authorizer/principals';
import { Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated } from '../errors';
import { parseBody, parseQuery, pageFields, type ApiRequest, type ApiResponse, type Endpoint } from '../http/api';
import { commonErrors, epochSeconds, listOf, permissionSchema, type RouteSpecs } from '../http/spec';
import { ADMIN_SET } from '../policy/admin-set';
import { loadExpressionEngine } from '../policy/expression';
import { checkApiId, checkSetName } from '../policy/policy-set';
import type { RouteRule } from '../policy/routes';
import { BUILTIN_ROLES, isBuiltinRoleName, ORG_BUILTIN_ROLES, SITE_BUILTIN_ROLES } from '../rbac/builtin';
import type { RoleCatalog } from '../rbac/catalog';
import { decide } from '../rbac/decide';
import { droppedPermissions, firstUnheld, holds, roleGrants, roleLevels, roleReach, type RoleLevel } from '../rbac/ceiling';
import { formatScope, parsePermission } from '../rbac/permissions';
import type { Permission, Principal, Role } from '../rbac/types';
import { ORG_ID_RE } from '../store/dynamo/orgs';
import { keys } from '../store/schema';
import { credentialRoot } from '../tokens/provenance';
import { type AdminDeps, actorId, audited, freshCatalog, nowSeconds } from './deps';
import { POLICY_SET_ROUTE_SPECS, PolicySetAdmin } from './policy-sets';

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
  set: z.string().max(63).optional().meta({ description: 'decide with this policy set (policy readers)' }),
  apiId: z.string().max(10).optional().meta({ description: 'decide with the set this API is bound to, as its authorizer would' }),
});
const auditQuery = z.strictObject({
  since: z.string().regex(/^\d{1,12}$/, 'epoch seconds').transform(Number).optional(),
  until: z.string().regex(/^\d{1,12}$/, 'epoch seconds').transform(Number).optional(),
  actor: z.string().max(300).optional(),
  ...pageFields,
});
const DAY = 86400;

const roleSchema = z.strictObject({
  name: z.string(),
  displayName: z.string().nullable(),
  builtIn: z.boolean(),
  orgId: z.string().optional().meta({ description: 'org roles only' }),
  site: z.array(permissionSchema),
  org: z.array(permissionSchema),
  member: z.array(permissionSchema),
  user: z.array(permissionSchema),
}).meta({ title: 'Role' });
const auditRecordSchema = z.strictObject({ at: epochSeconds, actor: z.string(), action: z.string(), target: z.string(), outcome: z.enum(['allowed', 'denied', 'failed']), reason: z.string().optional() }).meta({ title: 'AuditRecord' });
const explainSchema = z.looseObject({
  allowed: z.boolean(),
  code: z.string().meta({ description: 'the stable reason code of the decision' }),
  principalId: z.string().nullable(),
  route: z.string().nullable(),
  level: z.string().nullable(),
  role: z.string().nullable(),
  permission: permissionSchema.nullable(),
  expressions: z.array(z.looseObject({ name: z.string(), result: z.boolean() })),
  reasons: z.array(z.strictObject({ step: z.string(), detail: z.string().optional().meta({ description: 'shown to callers who may read policies' }) })),
  policyVersion: z.string().optional(),
  policySet: z.string().optional().meta({ description: 'the set that decided (shown to policy readers)' }),
  cacheable: z.boolean().meta({ description: 'whether a cached authorizer answer may be reused for this request (false: decided live only, see `cacheNotes`)' }),
  cacheNotes: z.array(z.string()).meta({ description: '`gate-not-cacheable`, `condition-not-cacheable`: reads request data outside the cache key; `gate-time-dependent`, `condition-time-dependent`: a cached answer may outlive the expression by the TTL' }),
}).meta({ title: 'Explanation' });
const orgHidden = commonErrors.notFound('the org does not exist, or the caller may not see it');
const roleWriteErrors = (org: boolean) => [
  ...(org ? [orgHidden] : []),
  { status: 403, code: 'cannot-manage-roles', when: org ? 'the caller may read the org but not manage its roles' : 'the caller holds no site-level role rights' },
  { status: 403, code: 'self-escalation', when: 'the person behind the credential holds the role, and the change would lift a negation or add a grant' },
  { status: 403, code: 'token-provenance-unknown', when: 'the acting token cannot be traced to whoever made it, and the change would widen the role' },
  { status: 409, code: 'reserved-role-name', when: 'the name is a built-in role' },
];

/** The role, policy, explain and audit endpoints as the API reference and `docs/openapi.json` describe them. */
export const POLICY_ROUTE_SPECS: RouteSpecs = {
  'GET /roles': { summary: 'List site-level roles: the built-in ones and custom site roles', responses: { 200: { description: 'the roles', schema: listOf(roleSchema) } }, errors: [] },
  'PUT /roles/{name}': {
    summary: 'Create or replace a custom site role (site admins)',
    description: 'Nobody defines a role granting more than they hold.',
    body: siteRoleBody,
    responses: { 200: { description: 'replaced', schema: roleSchema.extend({ version: z.string() }) }, 201: { description: 'created', schema: roleSchema.extend({ version: z.string() }) } },
    errors: [...roleWriteErrors(false), { status: 400, code: 'invalid-role-name', when: 'the name is not lower-case letters, digits and dashes, 2..63 characters' }, { status: 400, code: 'invalid-permission', when: 'a permission is not `{ resource, action, negate? }`' }, { status: 403, code: 'role-ceiling', when: 'a permission is one the caller does not hold site-wide' }],
  },
  'DELETE /roles/{name}': { summary: 'Delete a custom site role and take it from everyone who holds it', responses: { 204: { description: 'deleted' } }, errors: [...roleWriteErrors(false), commonErrors.notFound('no such custom role'), { status: 409, code: 'site-roles-changed', when: 'a holder\'s roles kept changing; delete again' }] },
  'GET /orgs/{orgId}/roles': { summary: 'List the roles of an org: built-in org roles and its custom roles', responses: { 200: { description: 'the roles', schema: listOf(roleSchema) } }, errors: [orgHidden] },
  'PUT /orgs/{orgId}/roles/{name}': {
    summary: 'Create or replace a custom org role',
    description: 'Org admins may not grant wildcards, and nobody grants a permission they do not hold in the org.',
    body: orgRoleBody,
    responses: { 200: { description: 'replaced', schema: roleSchema.extend({ version: z.string() }) }, 201: { description: 'created', schema: roleSchema.extend({ version: z.string() }) } },
    errors: [...roleWriteErrors(true), { status: 400, code: 'invalid-role-name', when: 'the name is not lower-case letters, digits and dashes, 2..63 characters' }, { status: 400, code: 'invalid-permission', when: 'a permission is not `{ resource, action, negate? }`' }, { status: 400, code: 'wildcard-not-allowed', when: 'an org admin (without site rights) grants a wildcard' }, { status: 403, code: 'role-ceiling', when: 'a permission is one the caller does not hold in the org' }],
  },
  'DELETE /orgs/{orgId}/roles/{name}': { summary: 'Delete a custom org role and take it from every member who holds it', responses: { 204: { description: 'deleted' } }, errors: [...roleWriteErrors(true), commonErrors.notFound('no such org or custom role'), { status: 409, code: 'membership-changed', when: 'a member\'s roles kept changing; delete again' }] },
  ...POLICY_SET_ROUTE_SPECS,
  'POST /authz/explain': {
    summary: 'The decision the authorizer would make for a request, and why',
    description: 'For the caller\'s own requests by default; with `credential` or `userId`, for someone else (site admins; anyone for a credential of their own). A refused credential is `allowed: false` with `status: 401`, whatever the reason.',
    body: explainBody,
    responses: { 200: { description: 'the decision and its reasons', schema: explainSchema } },
    errors: [
      { status: 403, code: 'explain-others', when: 'the caller asks about someone else without site-level policy:read' },
      { status: 403, code: 'cannot-read-policy', when: '`set` was given by a caller without site-level policy:read' },
      { status: 400, code: 'invalid-set-name', when: '`set` is not a set name' },
      { status: 400, code: 'invalid-api-id', when: '`apiId` is not ten lower-case letters and digits' },
      { status: 404, code: 'set-not-found', when: 'there is no such set' },
    ],
  },
  'GET /audit': {
    summary: 'Audit records, newest first (site admins and viewers)',
    description: '`since`/`until` are epoch seconds (default: the last 7 days, at most 31 at a time); `actor` filters by who acted.',
    query: auditQuery,
    responses: { 200: { description: 'a page of audit records', schema: listOf(auditRecordSchema) } },
    errors: [{ status: 403, code: 'cannot-read-audit', when: 'the caller holds no site-level audit:read' }],
  },
};


/**
 * What keeps a decision out of the authorizer cache: the gate, and the matched rule's
 * condition, when they read request data outside the cache key (`…-not-cacheable`: such
 * requests are decided live only) or the clock (`…-time-dependent`: an answer may outlive
 * the expression by the TTL). Codes only, never expression text.
 */
function cacheNotesOf(policy: CompiledPolicy, rule: RouteRule | undefined): string[] {
  const notes: string[] = [];
  const note = (name: 'gate' | 'condition', slot: ExpressionSlot | undefined) => {
    if (!slot) return;
    if (!slot.ok || slot.compiled.readsUncachedRequestData) notes.push(`${name}-not-cacheable`);
    else if (slot.compiled.timeDependent) notes.push(`${name}-time-dependent`);
  };
  if (rule && !rule.public) note('gate', policy.gate);
  if (rule) note('condition', policy.conditions.get(rule));
  return notes;
}

/** The one answer to a caller who may not explain for others, whatever the credential: no oracle. */
function explainOthers(): Forbidden {
  return new Forbidden('explain-others', 'explain answers your own requests; only policy readers may explain those of others');
}

/** Whether two principals are one holder (the same user, or the same service token). */
function sameHolder(a: Principal, b: Principal): boolean {
  return a.id === b.id && a.kind === b.kind;
}

/**
 * An explanation as a caller without policy:read may see it: the outcome's codes and
 * results, and what comes from the caller's own roles and scopes (level, role,
 * permission), which GET /roles shows them. Not shown: the matched rule (route template,
 * object, rule-naming reasons) and any gate or condition text or error. An allow-list, so
 * a field added to explanations later stays hidden until it is judged safe.
 */
function withoutPolicyText(e: Omit<Decision, 'match'>) {
  return {
    code: e.code,
    ...(e.public ? { public: true } : {}),
    ...(e.level !== undefined ? { level: e.level } : {}),
    ...(e.role !== undefined ? { role: e.role } : {}),
    ...(e.permission !== undefined ? { permission: e.permission } : {}),
    expressions: e.expressions.map((x) => ({ name: x.name, result: x.result })),
    reasons: e.reasons.map((r) => ({ step: r.step })),
    ...(e.policyVersion !== undefined ? { policyVersion: e.policyVersion } : {}),
  };
}

/** Custom roles, policies (policy sets: `PolicySetAdmin`), explain, and the audit log (DESIGN §6, Admin). */
export class PolicyAdmin {
  private readonly sets: PolicySetAdmin;

  constructor(private readonly deps: AdminDeps) {
    this.sets = new PolicySetAdmin(deps);
  }

  /**
   * The policy endpoints validate and compile expressions (a route's condition, a gate,
   * the policy an explanation decides with), so jexl is loaded before any endpoint here
   * is handled: once per process, after which the await finds it loaded.
   */
  routes(): Record<string, Endpoint> {
    const withExpressions = (endpoint: Endpoint): Endpoint => async (r) => {
      await loadExpressionEngine();
      return endpoint(r);
    };
    const routes: Record<string, Endpoint> = {
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
    return Object.fromEntries(Object.entries(routes).map(([key, endpoint]) => [key, withExpressions(endpoint)]));
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

  /**
   * The decision the authorizer would make, and why (DESIGN §6). Everyone may explain
   * their own requests: by default decided with the credential actually used (the
   * request's Authorization header, re-resolved, so a JWT's groups and claims count as
   * they do at the authorizer), or with another credential of their own. Policy readers
   * (site-level policy:read) may explain anyone's, by user id or by credential, and see
   * everything. Anyone else presenting a credential that is not theirs gets one refusal,
   * the same whether it is valid, revoked, expired or wrong (no oracle), and a gatehouse
   * token so presented is recorded in its access log; their explanations carry codes and
   * results, never rule or expression text they could not read through GET /policies/….
   */
  async explain(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const body = parseBody(explainBody, req.body);
    if (body.credential !== undefined && body.userId !== undefined) throw new InvalidInput('invalid-field', 'give credential or userId, not both');
    if (body.set !== undefined && body.apiId !== undefined) throw new InvalidInput('invalid-field', 'give set or apiId, not both');
    const catalog = await freshCatalog(this.deps);
    const reader = this.siteLevel(caller, catalog, 'policy', 'read');
    const set = await this.explainedSet(body, reader);
    let principal: Principal;
    if (body.credential !== undefined) {
      const presented = await this.present(body.credential);
      if (!reader && !('principal' in presented && sameHolder(presented.principal, caller))) {
        await this.recordForeign(req, presented);
        throw explainOthers();
      }
      if ('refused' in presented) {
        const code = presented.refused.code;
        const policyVersion = (await this.deps.store.loadPolicy(set)).version;
        // A refused credential is never cached as an answer: every request presenting it is refused again.
        return { status: 200, body: { allowed: false, code, status: 401, principalId: null, route: null, level: null, role: null, permission: null, expressions: [], reasons: [{ step: 'credential', detail: code }], policyVersion, policySet: set, cacheable: false, cacheNotes: [] } };
      }
      principal = presented.principal;
    } else if (body.userId !== undefined) {
      if (!reader && !(caller.kind === 'user' && body.userId === caller.id)) throw explainOthers();
      const user = await this.deps.store.users.loadUser(body.userId);
      principal = { id: body.userId, kind: 'user', siteRoles: user.siteRoles, orgs: user.orgs };
    } else principal = await this.ownPrincipal(req);
    const policy = compilePolicy(await this.deps.store.loadPolicy(set));
    // A query string in `path` becomes the request's query (conditions may read it).
    const q = body.path.indexOf('?');
    const path = q < 0 ? body.path : body.path.slice(0, q);
    const query = Object.create(null) as Record<string, string>;
    if (q >= 0) for (const [k, v] of new URLSearchParams(body.path.slice(q + 1))) query[k] = v;
    const request = { method: body.method, path, headers: Object.create(null) as Record<string, string>, query };
    const { match, ...decision } = decideRequest(policy, principal, request, this.deps.now());
    const shown = reader ? { ...decision, policySet: set } : withoutPolicyText(decision);
    const cacheNotes = cacheNotesOf(policy, match?.rule);
    // A stable shape: every field present, null when the decision never got that far (or is not shown).
    return {
      status: 200,
      body: { allowed: decision.allowed, principalId: principal.id, route: null, level: null, role: null, permission: null, ...shown, cacheable: !cacheNotes.some((n) => n.endsWith('-not-cacheable')), cacheNotes },
    };
  }

  /**
   * The set an explanation decides with: `set` (policy readers: set names and contents are
   * theirs to read), the set `apiId` is bound to (anyone: it is the set their requests to
   * that API meet), else `default`.
   */
  private async explainedSet(body: { set?: string | undefined; apiId?: string | undefined }, reader: boolean): Promise<string> {
    if (body.set !== undefined) {
      if (!reader) throw new Forbidden('cannot-read-policy', 'only policy readers may explain with a named set; give apiId to decide as that API\'s authorizer does');
      const name = checkSetName(body.set);
      if (name !== ADMIN_SET && name !== DEFAULT_SET && !(await this.deps.store.policy.readStamp(name)).exists) throw new NotFound('set-not-found', `no policy set ${name}`);
      return name;
    }
    if (body.apiId !== undefined) return (await this.deps.store.getApiBinding(checkApiId(body.apiId))) ?? DEFAULT_SET;
    return DEFAULT_SET;
  }

  /** A credential presented to explain: resolved, or the 401 that refuses it. Store and key-source failures throw (503). */
  private async present(credential: string): Promise<ResolvedCredential | { refused: Unauthenticated }> {
    try {
      return await this.deps.callers.resolve(credential);
    } catch (err) {
      if (err instanceof Unauthenticated) return { refused: err };
      throw err;
    }
  }

  /**
   * The caller as the credential actually used resolves, groups and claims included. Behind
   * API Gateway the Authorization header is the one the authorizer context came from;
   * without it, or when it resolves to anything but the caller (possible only off the
   * gateway), the caller is as the context names it.
   */
  private async ownPrincipal(req: ApiRequest): Promise<Principal> {
    const caller = req.caller;
    const credential = req.bearer?.();
    if (credential === undefined) return caller.principal;
    const used = await this.present(credential);
    if ('refused' in used || !sameHolder(used.principal, caller.principal) || used.token?.id !== caller.token?.id) return caller.principal;
    return used.principal;
  }

  /**
   * Records a gatehouse token presented to explain by someone it does not belong to, in
   * that token's access log (its holder sees the attempt; valid or not, the presenter saw
   * only the refusal). At most one entry per token, reason and source IP each second. A
   * failed write is logged, never answered differently.
   */
  private async recordForeign(req: ApiRequest, presented: ResolvedCredential | { refused: Unauthenticated }): Promise<void> {
    const refused = 'refused' in presented ? presented.refused : undefined;
    const token = refused ? (refused instanceof TokenRejected ? refused.token : undefined) : (presented as ResolvedCredential).token;
    const reason = refused ? refused.code : 'explain-others';
    this.deps.logger.warn('explain.foreign-credential', { requestId: req.requestId, actor: actorId(req.caller.principal), reason, ...(token ? { tokenId: token.id } : {}) });
    if (!token) return;
    const at = nowSeconds(this.deps);
    try {
      await this.deps.store.recordTokenAccess(
        token.id,
        { at, route: 'POST /authz/explain', ...(req.sourceIp ? { sourceIp: req.sourceIp.slice(0, 64) } : {}), outcome: 'unauthorized', reason },
        `explain-${reason}-${createHash('sha256').update(req.sourceIp ?? '').digest('base64url').slice(0, 12)}`,
      );
    } catch (err) {
      this.deps.logger.warn('token.access-log-failed', { tokenId: token.id, reason: (err as { code?: string }).code ?? 'unknown' });
    }
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
    const firstDay = new Date(since * 1000).toISOString().slice(0, 10);
    let inner: string | undefined;
    if (q.cursor) {
      // Hostile input: a real day inside this query's window (a day outside it would walk
      // partitions one by one), and an inner cursor that the day's Query checks itself.
      const c = auditCursor(q.cursor);
      if (!c || c.d < firstDay || c.d > day) throw new InvalidInput('invalid-cursor', 'invalid cursor');
      day = c.d;
      inner = c.c;
    }
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

/** The outer cursor of `GET /audit`: `{ d: day, c?: cursor inside that day }`, or undefined when malformed. */
function auditCursor(cursor: string): { d: string; c?: string } | undefined {
  let c: unknown;
  try {
    if (cursor.length > 4096 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
    c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!c || typeof c !== 'object' || Array.isArray(c)) return undefined;
  const { d, c: innerCursor, ...rest } = c as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || typeof d !== 'string' || (innerCursor !== undefined && typeof innerCursor !== 'string')) return undefined;
  // A calendar day that exists: 2026-02-30 does not survive the round trip.
  const t = /^\d{4}-\d{2}-\d{2}$/.test(d) ? Date.parse(`${d}T00:00:00Z`) : NaN;
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== d) return undefined;
  return innerCursor === undefined ? { d } : { d, c: innerCursor };
}

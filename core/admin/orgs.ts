import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { Conflict, Forbidden, NotFound } from '../errors';
import { parseBody, parseQuery, pageFields, type ApiRequest, type ApiResponse, type Endpoint } from '../http/api';
import { assignableRole, checkAssignment, validateRoleNames } from '../rbac/assign';
import type { RoleCatalog } from '../rbac/catalog';
import { decide } from '../rbac/decide';
import { keys } from '../store/schema';
import { failedConditionIndex } from '../store/dynamo/db';
import { InvitationRepo } from '../store/dynamo/invitations';
import { ORG_ID_RE } from '../store/dynamo/orgs';
import { type AdminDeps, audited, freshCatalog, nowSeconds } from './deps';

const USER_ID_RE = /^[A-Za-z0-9._:@|+-]{1,256}$/;
const rolesBody = z.strictObject({ roles: z.array(z.string().min(1).max(64)).max(20, 'at most 20 roles') });
const createOrgBody = z.strictObject({
  id: z.string().regex(ORG_ID_RE, 'lower-case letters, digits and dashes, 2..64 characters').optional(),
  name: z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters').regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters'),
});
const pageQuery = z.strictObject(pageFields);

function slug(name: string): string {
  const base = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'org';
  return `${base.length < 2 ? 'org' : base}-${randomBytes(3).toString('hex')}`;
}

/** Organizations, members and site roles (DESIGN §6, Admin). */
export class OrgAdmin {
  constructor(private readonly deps: AdminDeps) {}

  routes(): Record<string, Endpoint> {
    return {
      'GET /me': (r) => this.me(r),
      'POST /orgs': (r) => this.createOrg(r),
      'GET /orgs': (r) => this.listOrgs(r),
      'GET /orgs/{orgId}': (r) => this.getOrg(r),
      'DELETE /orgs/{orgId}': (r) => this.deleteOrg(r),
      'GET /orgs/{orgId}/members': (r) => this.listMembers(r),
      'PUT /orgs/{orgId}/members/{userId}': (r) => this.putMember(r),
      'DELETE /orgs/{orgId}/members/{userId}': (r) => this.deleteMember(r),
      'PUT /users/{userId}/site-roles': (r) => this.putSiteRoles(r),
    };
  }

  async me(req: ApiRequest): Promise<ApiResponse> {
    const p = req.caller.principal;
    const body: Record<string, unknown> = {
      id: p.id,
      kind: p.token ? 'token' : p.kind,
      siteRoles: p.siteRoles,
      orgs: Object.entries(p.orgs).map(([id, roles]) => ({ id, roles })),
      ...(p.email && p.emailVerified ? { email: p.email } : {}),
    };
    if (p.token) body.token = { id: p.token.id, kind: p.token.kind, scopes: p.token.scopes ? p.token.scopes.map((s) => `${s.resource}:${s.action}`) : null, ...(p.token.orgId ? { orgId: p.token.orgId } : {}) };
    return { status: 200, body };
  }

  /** An org id from the path that exists and that the caller may read; 404 otherwise (no existence leak). */
  private async readableOrg(req: ApiRequest, catalog: RoleCatalog): Promise<string> {
    const orgId = req.params.orgId ?? '';
    if (!ORG_ID_RE.test(orgId)) throw new NotFound();
    if (!decide(req.caller.principal, { type: 'org', action: 'read', orgId }, catalog).allowed) throw new NotFound();
    if (!(await this.deps.store.orgs.getOrg(orgId))) throw new NotFound();
    return orgId;
  }

  async createOrg(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'org.create', target: 'orgs' }, async () => {
      const catalog = await freshCatalog(this.deps);
      const may = decide(caller, { type: 'org', action: 'create' }, catalog);
      if (!may.allowed || may.level !== 'site') throw new Forbidden('cannot-create-org', 'organizations are created by site admins');
      const body = parseBody(createOrgBody, req.body);
      const now = nowSeconds(this.deps);
      const org = { id: body.id ?? slug(body.name), name: body.name, createdAt: now, createdBy: caller.token ? `token:${caller.token.id}` : caller.id };
      try {
        // The creator, if a user, becomes org-admin in the same transaction.
        await this.deps.store.orgs.createOrg(org, caller.kind === 'user' && !caller.token ? { userId: caller.id, roles: ['org-admin'] } : undefined);
      } catch (err) {
        // Only the org item's own condition (attribute_not_exists) means the id is taken;
        // anything else (a transaction conflict, throttling) stays a 503.
        if (failedConditionIndex((err as { cause?: unknown }).cause) === 0) throw new Conflict('org-exists', `organization ${org.id} exists`);
        throw err;
      }
      return { status: 201, headers: { location: `/orgs/${org.id}` }, body: org };
    });
  }

  async listOrgs(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const q = parseQuery(pageQuery, req.query);
    const catalog = await freshCatalog(this.deps);
    const all = decide(caller, { type: 'org', action: 'list' }, catalog);
    if (all.allowed && all.level === 'site') {
      const page = await this.deps.store.orgs.listOrgs({ limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
      return { status: 200, body: page };
    }
    const mine = Object.keys(caller.orgs).sort();
    const items = [];
    for (const id of mine) {
      const org = await this.deps.store.orgs.getOrg(id);
      if (org) items.push(org);
    }
    return { status: 200, body: { items } };
  }

  async getOrg(req: ApiRequest): Promise<ApiResponse> {
    const catalog = await freshCatalog(this.deps);
    const orgId = await this.readableOrg(req, catalog);
    return { status: 200, body: await this.deps.store.orgs.getOrg(orgId) };
  }

  /**
   * Deletes an org with everything that grants access in it: memberships are deleted,
   * org tokens revoked, pending invitations revoked, the org's custom roles deleted, and
   * the org item last, so a retried DELETE resumes an interrupted cascade.
   */
  async deleteOrg(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'org.delete', target: `org:${String(req.params.orgId).slice(0, 64)}` }, async () => {
      const catalog = await freshCatalog(this.deps);
      const orgId = await this.readableOrg(req, catalog);
      if (!decide(caller, { type: 'org', action: 'delete', orgId }, catalog).allowed) throw new Forbidden('cannot-delete-org');
      const now = nowSeconds(this.deps);
      const store = this.deps.store;
      for (const m of await store.orgs.gsi1Items(keys.orgMembers(orgId))) await store.users.deleteMembership(orgId, String(m.userId));
      for (const t of await store.orgs.gsi1Items(keys.tokensByOrg(orgId))) {
        if (t.revokedAt === undefined) await store.tokens.revokeToken(String(t.id), now, caller.id);
      }
      const invitations = new InvitationRepo(store.db);
      for (const i of await store.orgs.gsi1Items(keys.orgInvitations(orgId))) {
        if (i.status === 'pending') {
          const rec = await invitations.get(String(i.id));
          if (rec) await invitations.close(rec, 'revoked', now, caller.id);
        }
      }
      for (const role of catalog.orgRoles(orgId)) await store.policy.deleteRole(role.name, orgId, now);
      await store.orgs.deleteOrgItem(orgId);
      this.deps.logger.info('org.deleted', { orgId, actor: caller.id });
      return { status: 204 };
    });
  }

  async listMembers(req: ApiRequest): Promise<ApiResponse> {
    const catalog = await freshCatalog(this.deps);
    const orgId = await this.readableOrg(req, catalog);
    if (!decide(req.caller.principal, { type: 'membership', action: 'list', orgId }, catalog).allowed) throw new Forbidden('cannot-list-members');
    const q = parseQuery(pageQuery, req.query);
    const page = await this.deps.store.users.listMembers(orgId, { limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
    return { status: 200, body: { items: page.items.map((m) => ({ orgId, ...m })), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } };
  }

  private userParam(req: ApiRequest): string {
    const userId = req.params.userId ?? '';
    if (!USER_ID_RE.test(userId)) throw new NotFound();
    return userId;
  }

  async putMember(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'member.put', target: `org:${String(req.params.orgId).slice(0, 64)}/member:${String(req.params.userId).slice(0, 128)}` }, async () => {
      const catalog = await freshCatalog(this.deps);
      const orgId = await this.readableOrg(req, catalog);
      const userId = this.userParam(req);
      const body = parseBody(rolesBody, req.body);
      const roles = [...new Set(body.roles)];
      validateRoleNames(catalog, { scope: 'org', orgId }, roles);
      if (!decide(caller, { type: 'org_role', action: 'assign', orgId }, catalog).allowed) throw new Forbidden('cannot-assign', `not allowed to manage members of ${orgId}`);
      const current = (await this.deps.store.users.loadUser(userId)).orgs[orgId];
      const before = current ?? [];
      // Only the roles a change adds or removes are checked (coder's assignRoles).
      checkAssignment(caller, catalog, { scope: 'org', orgId }, {
        added: roles.filter((r) => !before.includes(r)),
        removed: before.filter((r) => !roles.includes(r) && assignableRole(catalog, { scope: 'org', orgId }, r)),
        targetUserId: userId,
      });
      const outcome = await this.deps.store.users.writeMembership(orgId, userId, roles, nowSeconds(this.deps), current);
      if (outcome === 'no-org') throw new NotFound();
      if (outcome === 'changed') throw new Conflict('membership-changed', 'the membership changed meanwhile; read it again');
      return { status: current === undefined ? 201 : 200, body: { orgId, userId, roles } };
    });
  }

  async deleteMember(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'member.delete', target: `org:${String(req.params.orgId).slice(0, 64)}/member:${String(req.params.userId).slice(0, 128)}` }, async () => {
      const catalog = await freshCatalog(this.deps);
      const orgId = await this.readableOrg(req, catalog);
      const userId = this.userParam(req);
      const current = (await this.deps.store.users.loadUser(userId)).orgs[orgId];
      if (current === undefined) throw new NotFound();
      const leaving = caller.kind === 'user' && !caller.token && caller.id === userId;
      if (!leaving) {
        if (!decide(caller, { type: 'membership', action: 'delete', orgId }, catalog).allowed) throw new Forbidden('cannot-remove-member');
        // Removing someone takes their roles away: the same rules as un-assigning them.
        checkAssignment(caller, catalog, { scope: 'org', orgId }, { added: [], removed: current.filter((r) => assignableRole(catalog, { scope: 'org', orgId }, r)) });
      }
      if (!(await this.deps.store.users.deleteMembership(orgId, userId))) throw new NotFound();
      return { status: 204 };
    });
  }

  async putSiteRoles(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'site-roles.put', target: `user:${String(req.params.userId).slice(0, 128)}` }, async () => {
      const catalog = await freshCatalog(this.deps);
      const userId = this.userParam(req);
      const body = parseBody(rolesBody, req.body);
      const roles = [...new Set(body.roles)];
      validateRoleNames(catalog, { scope: 'site' }, roles);
      if (!decide(caller, { type: 'site_role', action: 'assign' }, catalog).allowed) throw new Forbidden('cannot-assign', 'not allowed to assign site roles');
      const before = await this.deps.store.users.getSiteRoles(userId);
      checkAssignment(caller, catalog, { scope: 'site' }, {
        added: roles.filter((r) => !before.includes(r)),
        removed: before.filter((r) => !roles.includes(r) && assignableRole(catalog, { scope: 'site' }, r)),
        targetUserId: userId,
      });
      if (!(await this.deps.store.users.putSiteRoles(userId, roles, nowSeconds(this.deps)))) {
        throw new Conflict('site-roles-changed', 'the site roles changed meanwhile; read them again');
      }
      return { status: 200, body: { userId, roles } };
    });
  }
}


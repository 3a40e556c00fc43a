import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { Conflict, Forbidden, NotFound } from '../errors';
import { parseBody, parseQuery, pageFields, type ApiRequest, type ApiResponse, type Endpoint } from '../http/api';
import { commonErrors, epochSeconds, listOf, type RouteSpecs } from '../http/spec';
import { assignableRole, checkAssignment, validateRoleNames } from '../rbac/assign';
import type { RoleCatalog } from '../rbac/catalog';
import { decide } from '../rbac/decide';
import { withoutDeletingOrgs } from '../rbac/deleting-orgs';
import { keys } from '../store/schema';
import { InvitationRepo } from '../store/dynamo/invitations';
import { ORG_ID_RE } from '../store/dynamo/orgs';
import { credentialRoot } from '../tokens/provenance';
import { type AdminDeps, actorId, audited, freshCatalog, nowSeconds } from './deps';

const USER_ID_RE = /^[A-Za-z0-9._:@|+-]{1,256}$/;
const rolesBody = z.strictObject({ roles: z.array(z.string().min(1).max(64)).max(20, 'at most 20 roles') });
const createOrgBody = z.strictObject({
  id: z.string().regex(ORG_ID_RE, 'lower-case letters, digits and dashes, 2..64 characters').optional(),
  name: z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters').regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters'),
});
const pageQuery = z.strictObject(pageFields);

const orgSchema = z.strictObject({ id: z.string(), name: z.string(), createdAt: epochSeconds, createdBy: z.string().optional().meta({ description: 'user id, or `token:<id>`' }) }).meta({ title: 'Org' });
const memberSchema = z.strictObject({ orgId: z.string(), userId: z.string(), roles: z.array(z.string()), createdAt: epochSeconds, updatedAt: epochSeconds }).meta({ title: 'Member' });
const meSchema = z.strictObject({
  id: z.string().meta({ description: 'user id, or `token:<id>` for org and site tokens' }),
  kind: z.enum(['user', 'service', 'token']).meta({ description: '`token` when a personal token acts for its owner' }),
  siteRoles: z.array(z.string()),
  orgs: z.array(z.strictObject({ id: z.string(), roles: z.array(z.string()) })),
  email: z.string().optional().meta({ description: 'only when verified' }),
  token: z.strictObject({ id: z.string(), kind: z.enum(['personal', 'org', 'site']), scopes: z.array(z.string()).nullable(), orgId: z.string().optional() }).optional(),
}).meta({ title: 'Me' });
const orgHidden = commonErrors.notFound('the org does not exist, or the caller may not read it');
const assignErrors = [commonErrors.unknownRole, commonErrors.cannotAssign, commonErrors.roleCeiling, commonErrors.selfEscalation];

/** The org, member and site-role endpoints as the API reference and `docs/openapi.json` describe them. */
export const ORG_ROUTE_SPECS: RouteSpecs = {
  'GET /me': { summary: 'Who the caller is: id, kind, site roles, memberships, the token it acts with', responses: { 200: { description: 'the caller', schema: meSchema } }, errors: [] },
  'POST /orgs': {
    summary: 'Create an organization (site admins)',
    description: 'Without `id`, one is made from the name. A user who creates an org becomes its `org-admin`.',
    body: createOrgBody,
    responses: { 201: { description: 'the org', schema: orgSchema } },
    errors: [{ status: 403, code: 'cannot-create-org', when: 'the caller holds no site-level org:create' }, { status: 409, code: 'org-exists', when: 'an org with that id exists' }, { status: 409, code: 'org-deleting', when: 'an org with that id is being deleted: retry once its deletion has finished' }],
  },
  'GET /orgs': { summary: 'List orgs: all of them for site roles, else the caller\'s own', query: pageQuery, responses: { 200: { description: 'a page of orgs', schema: listOf(orgSchema) } }, errors: [] },
  'GET /orgs/{orgId}': { summary: 'Show an org', responses: { 200: { description: 'the org', schema: orgSchema } }, errors: [orgHidden] },
  'DELETE /orgs/{orgId}': {
    summary: 'Delete an org with its memberships, tokens, invitations and custom roles',
    description: 'Nothing left behind grants anything from the moment the answer is sent; a retried DELETE resumes an interrupted cascade.',
    responses: { 204: { description: 'deleted' } },
    errors: [orgHidden, { status: 403, code: 'cannot-delete-org', when: 'the caller may read the org but not delete it' }],
  },
  'GET /orgs/{orgId}/members': {
    summary: 'List an org\'s members',
    query: pageQuery,
    responses: { 200: { description: 'a page of members', schema: listOf(memberSchema) } },
    errors: [orgHidden, { status: 403, code: 'cannot-list-members', when: 'the caller may read the org but not list its members' }],
  },
  'PUT /orgs/{orgId}/members/{userId}': {
    summary: 'Add a member, or replace a member\'s roles',
    body: rolesBody,
    responses: { 200: { description: 'roles replaced', schema: z.strictObject({ orgId: z.string(), userId: z.string(), roles: z.array(z.string()) }) }, 201: { description: 'member added', schema: z.strictObject({ orgId: z.string(), userId: z.string(), roles: z.array(z.string()) }) } },
    errors: [commonErrors.notFound('no such org (or not visible), or an invalid user id'), ...assignErrors, { status: 409, code: 'membership-changed', when: 'the membership changed meanwhile; read it again' }],
  },
  'DELETE /orgs/{orgId}/members/{userId}': {
    summary: 'Remove a member (anyone may leave an org themselves)',
    responses: { 204: { description: 'removed' } },
    errors: [commonErrors.notFound('no such org or member, or not visible'), { status: 403, code: 'cannot-remove-member', when: 'the caller may not remove members there' }, commonErrors.cannotAssign, commonErrors.roleCeiling, commonErrors.unknownRole],
  },
  'PUT /users/{userId}/site-roles': {
    summary: 'Replace a user\'s site roles',
    body: rolesBody,
    responses: { 200: { description: 'the site roles now', schema: z.strictObject({ userId: z.string(), roles: z.array(z.string()) }) } },
    errors: [commonErrors.notFound('an invalid user id'), ...assignErrors, { status: 409, code: 'site-roles-changed', when: 'the site roles changed meanwhile; read them again' }, { status: 409, code: 'last-site-admin', when: 'the change would leave no site admin' }],
  },
};

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
      // The creator, if a user, becomes org-admin in the same transaction.
      if (!(await this.deps.store.orgs.createOrg(org, caller.kind === 'user' && !caller.token ? { userId: caller.id, roles: ['org-admin'] } : undefined))) {
        // The id is taken, possibly by an org whose deletion has not finished (retry the DELETE).
        if ((await this.deps.store.orgs.getOrgState(org.id))?.deleting) throw new Conflict('org-deleting', `organization ${org.id} is being deleted`);
        throw new Conflict('org-exists', `organization ${org.id} exists`);
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
   * Deletes an org with everything that grants access in it (DESIGN §4). In three steps:
   * 1. the org is marked as being deleted, with a marker the authorizers load with the
   *    policy: from then on its memberships and org tokens grant nothing, here at once
   *    and at the authorizer within its cache TTL, and every write that would add access
   *    to it fails (`orgAliveCheck`);
   * 2. the cascade removes what was written before the mark, found with a strongly
   *    consistent Query of the org's partition (and GSI1 for data older than that
   *    index): memberships deleted, org tokens revoked, invitations revoked, org roles
   *    deleted, all of them out of the org's listings;
   * 3. the org item and the marker go last, together, so until then the id cannot be
   *    taken again (409) and a retried DELETE resumes an interrupted cascade.
   */
  async deleteOrg(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'org.delete', target: `org:${String(req.params.orgId).slice(0, 64)}` }, async () => {
      const catalog = await freshCatalog(this.deps);
      const orgId = req.params.orgId ?? '';
      const state = ORG_ID_RE.test(orgId) ? await this.deps.store.orgs.getOrgState(orgId) : undefined;
      // An org already being deleted is resumed on rights held elsewhere: its own
      // memberships grant nothing any more, not even finishing the job.
      const actor = state?.deleting ? withoutDeletingOrgs(caller, new Set([orgId])) : caller;
      if (!state || !decide(actor, { type: 'org', action: 'read', orgId }, catalog).allowed) throw new NotFound();
      if (!decide(actor, { type: 'org', action: 'delete', orgId }, catalog).allowed) throw new Forbidden('cannot-delete-org');
      const now = nowSeconds(this.deps);
      const store = this.deps.store;
      // A concurrent DELETE finished meanwhile: nothing left to do here.
      if (!(await store.orgs.markDeleting(orgId, now, actorId(caller)))) throw new NotFound();
      await this.cascade(orgId, now, caller.id);
      await store.orgs.finishDeletion(orgId, now);
      this.deps.logger.info('org.deleted', { orgId, actor: caller.id, resumed: state.deleting });
      return { status: 204 };
    });
  }

  /** Step 2 of `deleteOrg`: every child of a marked org. Each step is idempotent (a retry repeats it). */
  private async cascade(orgId: string, now: number, by: string): Promise<void> {
    const store = this.deps.store;
    const invitations = new InvitationRepo(store.db);
    const children = await store.orgs.children(orgId);
    const ids = (indexed: string[], legacy: Record<string, unknown>[], field: string) =>
      new Set([...indexed, ...legacy.map((i) => i[field]).filter((v): v is string => typeof v === 'string')]);
    for (const userId of ids(children.members, await store.orgs.gsi1Items(keys.orgMembers(orgId)), 'userId')) await store.users.removeMembership(orgId, userId);
    for (const tokenId of ids(children.tokens, await store.orgs.gsi1Items(keys.tokensByOrg(orgId)), 'id')) await store.tokens.retireOrgToken(tokenId, orgId, now, by);
    const guarded = children.others.flatMap((o) => (o.invitationId ? [o.invitationId] : []));
    for (const id of ids([...children.invitations, ...guarded], await store.orgs.gsi1Items(keys.orgInvitations(orgId)), 'id')) await invitations.retireForOrg(id, orgId, now, by);
    // Read after the mark, strongly consistent: a role written before it is here, none can be written after.
    for (const role of (await store.loadPolicy()).roles) if (role.orgId === orgId) await store.policy.deleteRole(role.name, orgId, now);
    // What is left of the partition (guards of expired invitations) goes too: a new org with the id starts empty.
    for (const item of (await store.orgs.children(orgId)).others) await store.orgs.deleteChildItem(orgId, item.sk);
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
      // Only the roles a change adds or removes are checked (coder's assignRoles); a
      // token the target made counts as the target (nobody widens their own rights).
      checkAssignment(caller, catalog, { scope: 'org', orgId }, {
        added: roles.filter((r) => !before.includes(r)),
        removed: before.filter((r) => !roles.includes(r) && assignableRole(catalog, { scope: 'org', orgId }, r)),
        targetUserId: userId,
        actorRoot: await credentialRoot(this.deps.store.tokens, req.caller),
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
        // Removing someone takes their roles away: the same rules as un-assigning them,
        // except that with the membership gone no negation is left to lift.
        checkAssignment(caller, catalog, { scope: 'org', orgId }, {
          added: [],
          removed: current.filter((r) => assignableRole(catalog, { scope: 'org', orgId }, r)),
          targetUserId: userId,
          actorRoot: await credentialRoot(this.deps.store.tokens, req.caller),
          membershipEnds: true,
        });
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
        actorRoot: await credentialRoot(this.deps.store.tokens, req.caller),
      });
      // Written only if the roles are still those the checks above saw.
      if (!(await this.deps.store.users.putSiteRoles(userId, roles, nowSeconds(this.deps), before))) {
        throw new Conflict('site-roles-changed', 'the site roles changed meanwhile; read them again');
      }
      return { status: 200, body: { userId, roles } };
    });
  }
}


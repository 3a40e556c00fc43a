import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { type AdminDeps, audited, freshCatalog, nowSeconds } from '../admin/deps';
import { Conflict, Forbidden, Gone, NotFound, type ForbiddenCode } from '../errors';
import { parseBody, parseQuery, pageFields, type ApiRequest, type ApiResponse, type Endpoint } from '../http/api';
import { commonErrors, epochSeconds, listOf, type RouteSpecs } from '../http/spec';
import { checkAssignment, validateRoleNames } from '../rbac/assign';
import type { RoleCatalog } from '../rbac/catalog';
import { decide } from '../rbac/decide';
import type { Principal } from '../rbac/types';
import { ORG_ID_RE } from '../store/dynamo/orgs';
import { InvitationRepo, type InvitationRecord, type InvitationStatus } from '../store/dynamo/invitations';
import { senderLoss, senderRoot } from './sender';

const DAY = 86400;
const ID_RE = /^[A-Za-z0-9_-]{22}$/;
// Pragmatic address check: one @, no spaces or control characters, a dot in the domain.
const EMAIL_RE = /^[^\s@<>()[\]\\,;:"\u0000-\u001f]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+$/;

const createSchema = z.strictObject({
  email: z.string().max(254).transform((e) => e.trim().toLowerCase()).refine((e) => EMAIL_RE.test(e), 'not a valid email address'),
  role: z.string().min(1).max(64),
  expiresInDays: z.number().int('must be an integer').min(1, 'at least 1').max(30, 'at most 30').optional(),
});
const listQuery = z.strictObject({
  status: z.enum(['pending', 'accepted', 'declined', 'revoked', 'expired']).optional(),
  ...pageFields,
});

const invitationSchema = z.strictObject({
  id: z.string(),
  orgId: z.string(),
  email: z.string().meta({ description: 'lower-cased' }),
  role: z.string(),
  status: z.enum(['pending', 'accepted', 'declined', 'revoked', 'expired']),
  senderId: z.string().nullable().meta({ description: 'null when a service token sent it' }),
  createdAt: epochSeconds,
  expiresAt: epochSeconds,
}).meta({ title: 'Invitation' });
const acceptedSchema = invitationSchema.extend({ membership: z.strictObject({ orgId: z.string(), userId: z.string(), roles: z.array(z.string()) }) }).meta({ title: 'AcceptedInvitation' });
const orgHidden = commonErrors.notFound('the org does not exist, or the caller may not read it');
const mineErrors = [
  { status: 403, code: 'invitee-must-be-user', when: 'the caller is a token, not a person signed in with their own identity' },
  { status: 403, code: 'email-not-verified', when: 'the caller has no verified email' },
  { status: 403, code: 'wrong-invitee', when: 'the invitation is for another email' },
  commonErrors.notFound('no such invitation, or it was revoked'),
  { status: 410, code: 'invitation-expired', when: 'the invitation has expired' },
  { status: 409, code: 'invitation-not-pending', when: 'the invitation was already accepted or declined' },
];

/** The invitation endpoints as the API reference and `docs/openapi.json` describe them. */
export const INVITATION_ROUTE_SPECS: RouteSpecs = {
  'POST /orgs/{orgId}/invitations': {
    summary: 'Invite an email address into an org with a role',
    description: 'Org admins invite into their org, site admins (users or site tokens) into any. Nobody invites with a role they could not assign themselves.',
    body: createSchema,
    responses: { 201: { description: 'the pending invitation', schema: invitationSchema } },
    errors: [orgHidden, { status: 403, code: 'cannot-invite', when: 'the caller may read the org but not invite into it' }, commonErrors.unknownRole, commonErrors.cannotAssign, commonErrors.roleCeiling, { status: 403, code: 'self-escalation', when: 'the invitation is to the caller\'s own verified email' }, { status: 409, code: 'invitation-pending', when: 'a pending invitation for that email to that org exists' }],
  },
  'GET /orgs/{orgId}/invitations': {
    summary: 'List an org\'s invitations, newest first',
    query: listQuery,
    responses: { 200: { description: 'a page of invitations (filtered by `status` when given)', schema: listOf(invitationSchema) } },
    errors: [orgHidden, { status: 403, code: 'cannot-list-invitations', when: 'the caller may read the org but not list its invitations' }],
  },
  'DELETE /orgs/{orgId}/invitations/{id}': {
    summary: 'Revoke a pending invitation',
    responses: { 204: { description: 'revoked' } },
    errors: [commonErrors.notFound('no such org or invitation, or the caller may not see it'), { status: 403, code: 'cannot-revoke', when: 'the caller may read the org but not revoke its invitations' }, { status: 409, code: 'invitation-not-pending', when: 'the invitation is no longer pending' }],
  },
  'GET /invitations': {
    summary: 'The caller\'s own invitations (matched on their verified email)',
    description: 'Pending ones unless `status` says otherwise; empty for callers without a verified email, and for tokens.',
    query: listQuery,
    responses: { 200: { description: 'a page of invitations', schema: listOf(invitationSchema) } },
    errors: [],
  },
  'POST /invitations/{id}/accept': {
    summary: 'Accept an invitation: become a member of its org with its role',
    description: 'Needs a person signed in with their own identity whose verified email is the invitation\'s. Atomic and single-use.',
    responses: { 200: { description: 'accepted, with the new membership', schema: acceptedSchema } },
    errors: [
      ...mineErrors,
      { status: 403, code: 'sender-lost-right', when: 'whoever sent the invitation may no longer grant its role' },
      { status: 403, code: 'self-escalation', when: 'the caller sent the invitation (directly or through a token of theirs)' },
      { status: 403, code: 'token-provenance-unknown', when: 'the token that sent it can no longer be traced to whoever made it' },
      { status: 409, code: 'already-member', when: 'the caller is already a member of the org' },
    ],
  },
  'POST /invitations/{id}/decline': {
    summary: 'Decline an invitation',
    responses: { 204: { description: 'declined' } },
    errors: mineErrors,
  },
};

/** Invitation ids carry 128 bits of randomness. */
export function newInvitationId(): string {
  return randomBytes(16).toString('base64url');
}

function statusOf(r: InvitationRecord, nowS: number): InvitationStatus {
  return r.status === 'pending' && r.expiresAt <= nowS ? 'expired' : r.status;
}

function view(r: InvitationRecord, nowS: number) {
  return { id: r.id, orgId: r.orgId, email: r.email, role: r.role, status: statusOf(r, nowS), senderId: r.senderId, createdAt: r.createdAt, expiresAt: r.expiresAt };
}

/**
 * Organization invitations (DESIGN §6): org admins invite into their org, site admins
 * and site tokens into any org; nobody invites with a role they could not assign; the
 * invitee accepts with their own verified email, atomically and once.
 */
export class InvitationService {
  private readonly repo: InvitationRepo;

  constructor(private readonly deps: AdminDeps) {
    this.repo = new InvitationRepo(deps.store.db);
  }

  routes(): Record<string, Endpoint> {
    return {
      'POST /orgs/{orgId}/invitations': (r) => this.create(r),
      'GET /orgs/{orgId}/invitations': (r) => this.listOrg(r),
      'DELETE /orgs/{orgId}/invitations/{id}': (r) => this.revoke(r),
      'GET /invitations': (r) => this.listMine(r),
      'POST /invitations/{id}/accept': (r) => this.accept(r),
      'POST /invitations/{id}/decline': (r) => this.decline(r),
    };
  }

  /** The org, if it exists and the caller may see it; 404 otherwise. */
  private async visibleOrg(req: ApiRequest, catalog: RoleCatalog): Promise<string> {
    const orgId = req.params.orgId ?? '';
    if (!ORG_ID_RE.test(orgId) || !(await this.deps.store.orgs.getOrg(orgId))) throw new NotFound();
    return orgId;
  }

  private denyOrHide(caller: Principal, orgId: string, catalog: RoleCatalog, code: ForbiddenCode): never {
    // Someone who cannot even read the org learns nothing about it.
    if (decide(caller, { type: 'org', action: 'read', orgId }, catalog).allowed) throw new Forbidden(code);
    throw new NotFound();
  }

  async create(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'invitation.create', target: `org:${String(req.params.orgId).slice(0, 64)}` }, async () => {
      const catalog = await freshCatalog(this.deps);
      const orgId = await this.visibleOrg(req, catalog);
      if (!decide(caller, { type: 'invitation', action: 'create', orgId }, catalog).allowed) this.denyOrHide(caller, orgId, catalog, 'cannot-invite');
      const body = parseBody(createSchema, req.body);
      validateRoleNames(catalog, { scope: 'org', orgId }, [body.role]);
      // The role ceiling: nobody invites with a role they could not assign themselves.
      checkAssignment(caller, catalog, { scope: 'org', orgId }, { added: [body.role], removed: [] });
      // Nor themselves: nobody adds roles to themselves (refused again on acceptance, where
      // the invitee is known whatever credential sent it).
      if (this.verifiedEmail(caller) === body.email) throw new Forbidden('self-escalation', 'you cannot invite yourself');
      const nowS = nowSeconds(this.deps);
      const record: InvitationRecord = {
        id: newInvitationId(),
        orgId,
        email: body.email,
        role: body.role,
        status: 'pending',
        senderId: caller.kind === 'user' ? caller.id : null,
        ...(caller.token ? { senderTokenId: caller.token.id } : {}),
        createdAt: nowS,
        expiresAt: nowS + (body.expiresInDays ?? 7) * DAY,
      };
      const failed = await this.repo.create(record, nowS);
      // The org went away (or is being deleted) since it was read.
      if (failed === 'not-found') throw new NotFound();
      if (failed) throw new Conflict('invitation-pending', `a pending invitation for ${body.email} to ${orgId} exists`);
      // The recipient address is included so operators can route this event to email delivery.
      this.deps.logger.info('invitation.created', { invitationId: record.id, orgId, email: record.email, role: record.role, senderId: record.senderId, senderTokenId: record.senderTokenId, expiresAt: record.expiresAt });
      return { status: 201, body: view(record, nowS) };
    });
  }

  async listOrg(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const catalog = await freshCatalog(this.deps);
    const orgId = await this.visibleOrg(req, catalog);
    if (!decide(caller, { type: 'invitation', action: 'list', orgId }, catalog).allowed) this.denyOrHide(caller, orgId, catalog, 'cannot-list-invitations');
    const q = parseQuery(listQuery, req.query);
    const nowS = nowSeconds(this.deps);
    const page = await this.repo.list({ orgId }, { limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
    const items = page.items.map((r) => view(r, nowS)).filter((v) => !q.status || v.status === q.status);
    return { status: 200, body: { items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } };
  }

  async revoke(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'invitation.revoke', target: `invitation:${String(req.params.id).slice(0, 40)}` }, async () => {
      const catalog = await freshCatalog(this.deps);
      const orgId = await this.visibleOrg(req, catalog);
      if (!decide(caller, { type: 'invitation', action: 'delete', orgId }, catalog).allowed) this.denyOrHide(caller, orgId, catalog, 'cannot-revoke');
      const id = req.params.id ?? '';
      const r = ID_RE.test(id) ? await this.repo.get(id) : undefined;
      if (!r || r.orgId !== orgId) throw new NotFound();
      const nowS = nowSeconds(this.deps);
      if (statusOf(r, nowS) !== 'pending') throw new Conflict('invitation-not-pending', `the invitation is ${statusOf(r, nowS)}`);
      if (await this.repo.close(r, 'revoked', nowS, caller.id)) throw new Conflict('invitation-not-pending', 'the invitation changed meanwhile');
      this.deps.logger.info('invitation.revoked', { invitationId: r.id, orgId, actor: caller.id });
      return { status: 204 };
    });
  }

  /** The caller's verified email; invitations are matched on it, case-insensitively. */
  private verifiedEmail(caller: Principal): string | undefined {
    return caller.kind === 'user' && !caller.token && caller.emailVerified && caller.email ? caller.email.trim().toLowerCase() : undefined;
  }

  async listMine(req: ApiRequest): Promise<ApiResponse> {
    const q = parseQuery(listQuery, req.query);
    const email = this.verifiedEmail(req.caller.principal);
    // No verified email, no invitations: nothing can be matched to the caller.
    if (!email) return { status: 200, body: { items: [] } };
    const nowS = nowSeconds(this.deps);
    const page = await this.repo.list({ email }, { limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
    const wanted = q.status ?? 'pending';
    const items = page.items.map((r) => view(r, nowS)).filter((v) => v.status === wanted);
    return { status: 200, body: { items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } };
  }

  /**
   * Loads an invitation addressed to the caller. Only a person signed in with their
   * own identity (not a token) and a verified email may act on one (403 otherwise,
   * before any lookup); unknown and revoked ids are 404; someone else's is 403.
   */
  private async mine(req: ApiRequest): Promise<{ r: InvitationRecord; email: string }> {
    const caller = req.caller.principal;
    if (caller.kind !== 'user' || caller.token) throw new Forbidden('invitee-must-be-user', 'invitations are accepted by a person signed in with their own identity');
    const email = this.verifiedEmail(caller);
    if (!email) throw new Forbidden('email-not-verified', 'a verified email is required');
    const id = req.params.id ?? '';
    const r = ID_RE.test(id) ? await this.repo.get(id) : undefined;
    if (!r || r.status === 'revoked') throw new NotFound();
    if (email !== r.email) throw new Forbidden('wrong-invitee', 'this invitation is for someone else');
    return { r, email };
  }

  async accept(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'invitation.accept', target: `invitation:${String(req.params.id).slice(0, 40)}` }, async () => {
      const { r } = await this.mine(req);
      const nowS = nowSeconds(this.deps);
      const status = statusOf(r, nowS);
      if (status === 'expired') throw new Gone('invitation-expired', 'the invitation has expired');
      if (status !== 'pending') throw new Conflict('invitation-not-pending', `the invitation is ${status}`);
      // Accepting one's own invitation would add a role to oneself.
      const sender = await senderRoot(this.deps, r);
      if (sender.kind === 'user' && sender.userId === caller.id) throw new Forbidden('self-escalation', 'you cannot accept an invitation you sent');
      if (sender.kind === 'unknown') throw new Forbidden('token-provenance-unknown', 'the token that sent this invitation cannot be traced to whoever made it');
      const catalog = await freshCatalog(this.deps);
      const lost = await senderLoss(this.deps, r, catalog);
      if (lost) {
        this.deps.logger.info('invitation.sender-lost-right', { invitationId: r.id, orgId: r.orgId, reason: lost });
        throw new Forbidden('sender-lost-right', 'whoever sent this invitation may no longer grant its role');
      }
      const failed = await this.repo.accept(r, caller.id, nowS);
      if (failed === 'already-member') throw new Conflict('already-member', `you are already a member of ${r.orgId}`);
      if (failed === 'expired') throw new Gone('invitation-expired', 'the invitation has expired');
      if (failed === 'not-found') throw new NotFound();
      if (failed) throw new Conflict('invitation-not-pending', 'the invitation was already used');
      this.deps.logger.info('invitation.accepted', { invitationId: r.id, orgId: r.orgId, userId: caller.id, role: r.role });
      return { status: 200, body: { ...view({ ...r, status: 'accepted' }, nowS), membership: { orgId: r.orgId, userId: caller.id, roles: [r.role] } } };
    });
  }

  async decline(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'invitation.decline', target: `invitation:${String(req.params.id).slice(0, 40)}` }, async () => {
      const { r } = await this.mine(req);
      const nowS = nowSeconds(this.deps);
      const status = statusOf(r, nowS);
      if (status === 'expired') throw new Gone('invitation-expired', 'the invitation has expired');
      if (status !== 'pending') throw new Conflict('invitation-not-pending', `the invitation is ${status}`);
      if (await this.repo.close(r, 'declined', nowS, caller.id)) throw new Conflict('invitation-not-pending', 'the invitation changed meanwhile');
      this.deps.logger.info('invitation.declined', { invitationId: r.id, orgId: r.orgId, userId: caller.id });
      return { status: 204 };
    });
  }
}


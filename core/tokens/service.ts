import { z } from 'zod';
import { type AdminDeps, audited, freshCatalog, nowSeconds } from '../admin/deps';
import { Conflict, Forbidden, Gone, InvalidInput, NotFound } from '../errors';
import { parseBody, parseQuery, pageFields, type ApiRequest, type ApiResponse, type Endpoint } from '../http/api';
import { commonErrors, epochSeconds, listOf, type ErrorSpec, type RouteSpecs } from '../http/spec';
import { generateToken, hashSecret, isTokenId } from '../identity/token-format';
import { IDEMPOTENCY_ERRORS, IDEMPOTENCY_HEADER, idempotencyKey, mintToken } from './idempotency';
import type { RoleCatalog } from '../rbac/catalog';
import { holdsSomewhere, tokenCeilingGap, type Grant, type TokenShape } from '../rbac/ceiling';
import { decide } from '../rbac/decide';
import { formatScope, parseScope, storedScopes } from '../rbac/permissions';
import type { Permission, Principal, TokenKind } from '../rbac/types';
import { keys } from '../store/schema';
import { ORG_ID_RE } from '../store/dynamo/orgs';
import type { TokenRecord } from '../store/types';
import { credentialRoot } from './provenance';

/** Longest grace an old secret may keep working after a rotation. */
export const MAX_ROTATION_GRACE_SECONDS = 24 * 3600;
const DAY = 86400;

const createSchema = z.strictObject({
  name: z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters').regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters'),
  scopes: z.array(z.string().max(130)).max(50, 'at most 50 scopes').optional(),
  expiresInDays: z.number().int('must be an integer').min(1, 'at least 1').max(3650, 'at most 3650').optional(),
});
const rotateSchema = z.strictObject({
  graceSeconds: z.number().int('must be an integer').min(0).max(MAX_ROTATION_GRACE_SECONDS, `at most ${MAX_ROTATION_GRACE_SECONDS}`).optional(),
});
const listQuery = z.strictObject({
  ...pageFields,
});

/** The public view of a token: never the secret or its hash. */
export function tokenView(t: TokenRecord, nowS: number) {
  return {
    id: t.id,
    kind: t.kind,
    name: t.name,
    scopes: t.scopes ?? null,
    orgId: t.orgId ?? null,
    ownerId: t.ownerId ?? null,
    createdAt: t.createdAt,
    expiresAt: t.expiresAt,
    lastUsedAt: t.lastUsedAt ?? null,
    status: t.revokedAt !== undefined ? 'revoked' : t.expiresAt <= nowS ? 'expired' : 'active',
    ...(t.revokedAt !== undefined ? { revokedAt: t.revokedAt } : {}),
  };
}

function scopeSet(raw: string[] | undefined): Permission[] | undefined {
  if (raw === undefined) return undefined;
  const perms = raw.map((s) => {
    try {
      return parseScope(s);
    } catch (err) {
      throw new InvalidInput('invalid-scope', (err as Error).message, { field: 'scopes' });
    }
  });
  const seen = new Set<string>();
  for (const p of perms) {
    const k = formatScope(p);
    if (seen.has(k)) throw new InvalidInput('invalid-scope', `duplicate scope ${k}`, { field: 'scopes' });
    seen.add(k);
  }
  return perms;
}

/** What a stored token is, for the ceiling. A stored scope that no longer parses grants nothing (as in the authorizer). */
function shapeOf(t: TokenRecord): TokenShape {
  const scopes = storedScopes(t.scopes);
  return { kind: t.kind, ...(t.orgId !== undefined ? { orgId: t.orgId } : {}), ...(t.ownerId !== undefined ? { ownerId: t.ownerId } : {}), ...(scopes ? { scopes } : {}) };
}

/** A grant in words, for refusals. */
function describe(g: Grant): string {
  const where = g.reach.orgId !== undefined ? ` in ${g.reach.orgId}` : g.reach.ownerId === undefined ? ' site-wide' : '';
  const own = g.reach.ownerId !== undefined ? ` over what ${g.reach.ownerId} owns` : '';
  return `${formatScope(g.permission)}${where}${own}`;
}

/** What `tokenView` answers (the API reference is generated from it; a test holds it to the real answers). */
const tokenViewSchema = z.strictObject({
  id: z.string().meta({ description: 'the public token id (16 base62 characters)' }),
  kind: z.enum(['personal', 'org', 'site']),
  name: z.string(),
  scopes: z.array(z.string()).nullable().meta({ description: 'null: all of the holder\'s rights' }),
  orgId: z.string().nullable(),
  ownerId: z.string().nullable(),
  createdAt: epochSeconds,
  expiresAt: epochSeconds,
  lastUsedAt: epochSeconds.nullable(),
  status: z.enum(['active', 'expired', 'revoked']),
  revokedAt: epochSeconds.optional(),
}).meta({ title: 'Token' });
const tokenCreatedSchema = tokenViewSchema.extend({ token: z.string().meta({ description: 'the secret token, shown this once' }) }).meta({ title: 'TokenWithSecret' });
const tokenRotatedSchema = tokenCreatedSchema.extend({ previousValidUntil: epochSeconds.nullable().meta({ description: 'until when the old secret keeps working (grace), or null' }) }).meta({ title: 'RotatedToken' });
const accessLogEntrySchema = z.strictObject({
  at: epochSeconds,
  route: z.string(),
  sourceIp: z.string().optional(),
  outcome: z.enum(['allow', 'deny', 'unauthorized']),
  reason: z.string(),
  count: z.number().int().optional().meta({ description: 'failed attempts aggregated into this entry' }),
}).meta({ title: 'AccessLogEntry' });

const createErrors = (kind: TokenKind): ErrorSpec[] => [
  commonErrors.invalidScope,
  ...(kind === 'personal' ? [{ status: 403, code: 'personal-token-needs-user', when: 'the caller is not a user (a service token)' }] : []),
  { status: 403, code: 'cannot-create-token', when: 'the caller may not create this kind of token there' },
  { status: 403, code: 'scope-escalation', when: 'a scope asks for a right the caller does not hold' + (kind === 'org' ? ' in the org' : kind === 'site' ? ' site-wide' : '') },
  { status: 403, code: 'expiry-escalation', when: 'the caller is a token and `expiresInDays` asks for a token that would outlive it' },
  ...(kind === 'org' ? [commonErrors.notFound('the org does not exist or the caller may not see it')] : []),
  ...IDEMPOTENCY_ERRORS,
];
const listErrors = (kind: TokenKind): ErrorSpec[] => [
  ...(kind === 'personal' ? [{ status: 403, code: 'personal-token-needs-user', when: 'the caller is not a user (a service token)' }] : []),
  { status: 403, code: 'cannot-list-tokens', when: kind === 'site' ? 'the caller holds no site-level token:list' : 'the caller may not list these tokens' },
  ...(kind === 'org' ? [commonErrors.notFound('the org does not exist or the caller may not see it')] : []),
];
const byId = commonErrors.notFound('no such token, revoked (for rotate and revoke), or not the caller\'s to see');

/** The token endpoints as the API reference and `docs/openapi.json` describe them. */
export const TOKEN_ROUTE_SPECS: RouteSpecs = {
  'POST /tokens': {
    summary: 'Create a personal token for the calling user',
    description: 'The token acts for its owner with at most the given scopes (default: all of the owner\'s rights, or the creating token\'s scopes). The secret is in the answer once.',
    body: createSchema, headers: [IDEMPOTENCY_HEADER],
    responses: { 201: { description: 'created; `token` is the secret, shown once', schema: tokenCreatedSchema } },
    errors: createErrors('personal'),
  },
  'POST /orgs/{orgId}/tokens': {
    summary: 'Create an org service token',
    description: 'Acts as a member of the org whose org permissions are its scopes (default: every right the creator holds there).',
    body: createSchema, headers: [IDEMPOTENCY_HEADER],
    responses: { 201: { description: 'created; `token` is the secret, shown once', schema: tokenCreatedSchema } },
    errors: createErrors('org'),
  },
  'POST /site/tokens': {
    summary: 'Create a site token (site admins)',
    description: 'Holds its scopes at site level (default: everything the creator holds site-wide).',
    body: createSchema, headers: [IDEMPOTENCY_HEADER],
    responses: { 201: { description: 'created; `token` is the secret, shown once', schema: tokenCreatedSchema } },
    errors: createErrors('site'),
  },
  'GET /tokens': { summary: 'List the calling user\'s personal tokens, newest first', query: listQuery, responses: { 200: { description: 'a page of tokens', schema: listOf(tokenViewSchema) } }, errors: listErrors('personal') },
  'GET /orgs/{orgId}/tokens': { summary: 'List an org\'s service tokens, newest first', query: listQuery, responses: { 200: { description: 'a page of tokens', schema: listOf(tokenViewSchema) } }, errors: listErrors('org') },
  'GET /site/tokens': { summary: 'List every token (site-wide audit view), newest first', query: listQuery, responses: { 200: { description: 'a page of tokens', schema: listOf(tokenViewSchema) } }, errors: listErrors('site') },
  'GET /tokens/{id}': { summary: 'Show one token (never its secret or hash)', responses: { 200: { description: 'the token', schema: tokenViewSchema } }, errors: [byId] },
  'DELETE /tokens/{id}': { summary: 'Revoke a token', responses: { 204: { description: 'revoked' } }, errors: [byId] },
  'POST /tokens/{id}/rotate': {
    summary: 'Give a token a new secret (same id)',
    description: 'The rotator must hold everything the token can do. With `graceSeconds`, the old secret keeps working that long.',
    body: rotateSchema, bodyOptional: true,
    responses: { 200: { description: 'rotated; `token` is the new secret, shown once', schema: tokenRotatedSchema } },
    errors: [
      byId,
      { status: 403, code: 'rotation-escalation', when: 'the rotating credential does not hold everything the token can do (rotating hands over its secret)' },
      { status: 403, code: 'expiry-escalation', when: 'a token rotating a token that outlives it' },
      { status: 410, code: 'token-expired', when: 'the token has expired' },
      { status: 409, code: 'rotation-conflict', when: 'the token changed meanwhile (another rotation)' },
    ],
  },
  'GET /tokens/{id}/access-log': { summary: 'A token\'s access log: uses and failed attempts, newest first', query: listQuery, responses: { 200: { description: 'a page of entries', schema: listOf(accessLogEntrySchema) } }, errors: [byId] },
};

/**
 * Token management (DESIGN §6, Tokens): personal, org and site tokens with
 * TTL-based expiry, scope ceilings, revocation, rotation and an access log.
 */
export class TokenService {
  constructor(private readonly deps: AdminDeps) {}

  /** The endpoints, keyed by route, for `createApi`. */
  routes(): Record<string, Endpoint> {
    return {
      'POST /tokens': (r) => this.create(r, 'personal'),
      'POST /orgs/{orgId}/tokens': (r) => this.create(r, 'org'),
      'POST /site/tokens': (r) => this.create(r, 'site'),
      'GET /tokens': (r) => this.list(r, 'personal'),
      'GET /orgs/{orgId}/tokens': (r) => this.list(r, 'org'),
      'GET /site/tokens': (r) => this.list(r, 'site'),
      'GET /tokens/{id}': (r) => this.get(r),
      'DELETE /tokens/{id}': (r) => this.revoke(r),
      'POST /tokens/{id}/rotate': (r) => this.rotate(r),
      'GET /tokens/{id}/access-log': (r) => this.accessLog(r),
    };
  }

  private orgParam(req: ApiRequest): string {
    const orgId = req.params.orgId ?? '';
    if (!ORG_ID_RE.test(orgId)) throw new NotFound();
    return orgId;
  }

  /**
   * Creates a token under the creation ceiling (DESIGN §4): the new token can do nothing
   * its creator cannot do now. Scopes left out are the creating token's own (a JWT: all of
   * the caller's rights, as before); a token made by a token never outlives it: an omitted
   * expiry is capped at the creator's, an explicit one beyond it is refused.
   */
  async create(req: ApiRequest, kind: TokenKind): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const orgId = kind === 'org' ? this.orgParam(req) : undefined;
    const target = kind === 'org' ? `org:${orgId}/tokens` : kind === 'site' ? 'site/tokens' : `user:${caller.id}/tokens`;
    return audited(this.deps, { actor: caller, action: `token.create.${kind}`, target }, async () => {
      const body = parseBody(createSchema, req.body);
      const retryKey = idempotencyKey(req.headers);
      const requested = scopeSet(body.scopes);
      const catalog = await freshCatalog(this.deps);
      const nowS = nowSeconds(this.deps);

      if (kind === 'personal') {
        if (caller.kind !== 'user') throw new Forbidden('personal-token-needs-user', 'only a user can hold a personal token');
        if (!decide(caller, { type: 'token', action: 'create', ownerId: caller.id }, catalog).allowed) throw new Forbidden('cannot-create-token');
        for (const p of requested ?? []) {
          if (!holdsSomewhere(caller, p, catalog)) throw new Forbidden('scope-escalation', `you do not hold ${formatScope(p)}`);
        }
      } else if (kind === 'org') {
        if (!(await this.deps.store.orgs.getOrg(orgId!))) {
          // Not visible either way: 404 rather than telling who may see which org exists.
          throw new NotFound();
        }
        const may = decide(caller, { type: 'token', action: 'create', orgId: orgId! }, catalog);
        if (!may.allowed) throw decide(caller, { type: 'org', action: 'read', orgId: orgId! }, catalog).allowed ? new Forbidden('cannot-create-token') : new NotFound();
      } else {
        const may = decide(caller, { type: 'token', action: 'create' }, catalog);
        if (!may.allowed) throw new Forbidden('cannot-create-token', 'site tokens are created by site admins');
      }

      // Omitted scopes: a creating token's own scopes, never its owner's full rights.
      const scopes = requested ?? caller.token?.scopes;
      const shape: TokenShape = { kind, ...(orgId ? { orgId } : {}), ...(kind === 'personal' ? { ownerId: caller.id } : {}), ...(scopes ? { scopes } : {}) };
      const gap = tokenCeilingGap(caller, shape, caller, catalog);
      if (gap) throw new Forbidden('scope-escalation', `you do not hold ${describe(gap)}`);

      let expiresAt = nowS + (body.expiresInDays ?? 365) * DAY;
      const creator = req.caller.token;
      if (creator && expiresAt > creator.expiresAt) {
        if (body.expiresInDays !== undefined) {
          throw new Forbidden('expiry-escalation', `a token made by a token expires no later than it does (in ${Math.max(0, Math.floor((creator.expiresAt - nowS) / DAY))} whole days)`);
        }
        expiresAt = creator.expiresAt;
      }
      const root = await credentialRoot(this.deps.store.tokens, req.caller);

      // With an Idempotency-Key, a retry answers the token the first request created.
      const minted = await mintToken(this.deps, { key: retryKey, caller, req }, (id, secret): TokenRecord => ({
        id,
        kind,
        name: body.name,
        ...(kind === 'personal' ? { ownerId: caller.id } : {}),
        ...(orgId ? { orgId } : {}),
        ...(scopes ? { scopes: scopes.map(formatScope) } : {}),
        secretHash: hashSecret(secret),
        createdAt: nowS,
        expiresAt,
        createdBy: caller.token ? `token:${caller.token.id}` : caller.id,
        ...(root.kind === 'user' ? { rootUserId: root.userId } : {}),
      }));
      this.deps.logger.info(minted.replayed ? 'token.create-replayed' : 'token.created', { tokenId: minted.record.id, kind, orgId, actor: caller.id });
      return { status: 201, headers: { location: `/tokens/${minted.record.id}` }, body: { ...tokenView(minted.record, nowS), token: minted.token } };
    });
  }

  async list(req: ApiRequest, kind: TokenKind): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const q = parseQuery(listQuery, req.query);
    const catalog = await freshCatalog(this.deps);
    let by: { index: 'gsi1' | 'gsi2'; key: string };
    if (kind === 'personal') {
      if (caller.kind !== 'user') throw new Forbidden('personal-token-needs-user', 'only users have personal tokens');
      if (!decide(caller, { type: 'token', action: 'list', ownerId: caller.id }, catalog).allowed) throw new Forbidden('cannot-list-tokens');
      by = { index: 'gsi1', key: keys.tokensByOwner(caller.id) };
    } else if (kind === 'org') {
      const orgId = this.orgParam(req);
      if (!decide(caller, { type: 'token', action: 'list', orgId }, catalog).allowed) {
        throw decide(caller, { type: 'org', action: 'read', orgId }, catalog).allowed ? new Forbidden('cannot-list-tokens') : new NotFound();
      }
      // Not for an org that is gone or being deleted: its memberships and tokens grant nothing.
      if (!(await this.deps.store.orgs.getOrg(orgId))) throw new NotFound();
      by = { index: 'gsi1', key: keys.tokensByOrg(orgId) };
    } else {
      // Site-wide audit view of every token: site admins and viewers.
      const d = decide(caller, { type: 'token', action: 'list' }, catalog);
      if (!d.allowed || d.level !== 'site') throw new Forbidden('cannot-list-tokens', 'the site-wide token view needs a site role');
      by = { index: 'gsi2', key: keys.allTokens() };
    }
    const page = await this.deps.store.tokens.listTokens(by, { limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
    const nowS = nowSeconds(this.deps);
    return { status: 200, body: { items: page.items.map((t) => tokenView(t, nowS)), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } };
  }

  /** Loads a token the caller may act on with `action`; anything else is 404 (no existence leak). */
  private async visibleToken(req: ApiRequest, action: 'read' | 'delete' | 'update'): Promise<{ token: TokenRecord; catalog: RoleCatalog }> {
    const id = req.params.id ?? '';
    if (!isTokenId(id)) throw new NotFound();
    const token = await this.deps.store.tokens.getToken(id);
    if (!token) throw new NotFound();
    const catalog = await freshCatalog(this.deps);
    const caller = req.caller.principal;
    const object =
      token.kind === 'personal'
        ? { type: 'token', action, ownerId: token.ownerId ?? '' }
        : token.kind === 'org'
          ? { type: 'token', action, orgId: token.orgId ?? '' }
          : { type: 'token', action };
    const may = decide(caller, object, catalog);
    if (!may.allowed) throw new NotFound();
    // Rights inside an org reach its tokens only while it is alive, and only the tokens of
    // this incarnation of the id (an org deleted and created again starts empty).
    if (token.kind === 'org' && may.level !== 'site') {
      const org = await this.deps.store.orgs.getOrg(token.orgId ?? '');
      if (!org || token.createdAt < org.createdAt) throw new NotFound();
    }
    return { token, catalog };
  }

  async get(req: ApiRequest): Promise<ApiResponse> {
    const { token } = await this.visibleToken(req, 'read');
    return { status: 200, body: tokenView(token, nowSeconds(this.deps)) };
  }

  async revoke(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'token.revoke', target: `token:${String(req.params.id).slice(0, 40)}` }, async () => {
      const { token } = await this.visibleToken(req, 'delete');
      if (token.revokedAt !== undefined) throw new NotFound('not-found', 'not found');
      const ok = await this.deps.store.tokens.revokeToken(token.id, nowSeconds(this.deps), caller.id);
      if (!ok) throw new NotFound();
      this.deps.logger.info('token.revoked', { tokenId: token.id, actor: caller.id });
      return { status: 204 };
    });
  }

  /**
   * Rotation hands over the token's secret, so whoever rotates must hold, now, everything
   * the token can do: the creation ceiling applied again, as if the caller were creating
   * this very token (same kind, org, owner and scopes), and a rotating token must not
   * hand over one that outlives it. A credential rotating itself holds exactly itself.
   */
  private async checkRotator(req: ApiRequest, token: TokenRecord, catalog: RoleCatalog): Promise<void> {
    const caller = req.caller.principal;
    const rotator = req.caller.token;
    if (rotator?.id === token.id) return;
    let owner: Principal | undefined;
    if (token.kind === 'personal') {
      if (!token.ownerId) throw new NotFound();
      if (caller.kind === 'user' && caller.id === token.ownerId) owner = caller;
      else {
        const user = await this.deps.store.users.loadUser(token.ownerId);
        owner = { id: token.ownerId, kind: 'user', siteRoles: user.siteRoles, orgs: user.orgs };
      }
    }
    const gap = tokenCeilingGap(caller, shapeOf(token), owner, catalog);
    if (gap) throw new Forbidden('rotation-escalation', `the token can do ${describe(gap)}, which you do not hold`);
    if (rotator && token.expiresAt > rotator.expiresAt) throw new Forbidden('expiry-escalation', 'a token cannot rotate a token that outlives it');
  }

  async rotate(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'token.rotate', target: `token:${String(req.params.id).slice(0, 40)}` }, async () => {
      const body = req.body === undefined ? {} : parseBody(rotateSchema, req.body);
      const { token, catalog } = await this.visibleToken(req, 'update');
      const nowS = nowSeconds(this.deps);
      if (token.revokedAt !== undefined) throw new NotFound();
      if (token.expiresAt <= nowS) throw new Gone('token-expired', 'the token has expired; create a new one');
      await this.checkRotator(req, token, catalog);
      const t = generateToken(token.id);
      const grace = body.graceSeconds ?? 0;
      const ok = await this.deps.store.tokens.rotateToken(token.id, token.secretHash, hashSecret(t.secret), nowS, grace > 0 ? Math.min(nowS + grace, token.expiresAt) : undefined);
      if (!ok) throw new Conflict('rotation-conflict', 'the token changed meanwhile; read it again');
      this.deps.logger.info('token.rotated', { tokenId: token.id, actor: caller.id, graceSeconds: grace });
      return { status: 200, body: { ...tokenView(token, nowS), token: t.token, previousValidUntil: grace > 0 ? Math.min(nowS + grace, token.expiresAt) : null } };
    });
  }

  async accessLog(req: ApiRequest): Promise<ApiResponse> {
    const q = parseQuery(listQuery, req.query);
    const { token } = await this.visibleToken(req, 'read');
    const page = await this.deps.store.tokens.listAccessLog(token.id, { limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
    return { status: 200, body: page };
  }
}


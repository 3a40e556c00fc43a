import { z } from 'zod';
import { type AdminDeps, audited, freshCatalog, nowSeconds } from '../admin/deps';
import { Conflict, Forbidden, Gone, InvalidInput, NotFound } from '../errors';
import { parseBody, parseQuery, pageFields, type ApiRequest, type ApiResponse, type Endpoint } from '../http/api';
import { generateToken, hashSecret, isTokenId } from '../identity/token-format';
import type { RoleCatalog } from '../rbac/catalog';
import { decide } from '../rbac/decide';
import { formatScope, parseScope } from '../rbac/permissions';
import type { Permission, Principal, TokenKind } from '../rbac/types';
import { keys } from '../store/schema';
import { ORG_ID_RE } from '../store/dynamo/orgs';
import type { TokenRecord } from '../store/types';

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

/** True when `principal` holds `p` somewhere its token would act: site, one of its orgs, or over what it owns. */
function holdsAnywhere(principal: Principal, p: Permission, catalog: RoleCatalog): boolean {
  const obj = { type: p.resource, action: p.action };
  if (decide(principal, obj, catalog).allowed) return true;
  if (principal.kind === 'user' && decide(principal, { ...obj, ownerId: principal.id }, catalog).allowed) return true;
  for (const orgId of Object.keys(principal.orgs)) {
    if (decide(principal, { ...obj, orgId }, catalog).allowed) return true;
    if (principal.kind === 'user' && decide(principal, { ...obj, orgId, ownerId: principal.id }, catalog).allowed) return true;
  }
  return false;
}

const ALL: Permission = { resource: '*', action: '*' };

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

  async create(req: ApiRequest, kind: TokenKind): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const orgId = kind === 'org' ? this.orgParam(req) : undefined;
    const target = kind === 'org' ? `org:${orgId}/tokens` : kind === 'site' ? 'site/tokens' : `user:${caller.id}/tokens`;
    return audited(this.deps, { actor: caller, action: `token.create.${kind}`, target }, async () => {
      const body = parseBody(createSchema, req.body);
      const scopes = scopeSet(body.scopes);
      const catalog = await freshCatalog(this.deps);
      const nowS = nowSeconds(this.deps);

      if (kind === 'personal') {
        if (caller.kind !== 'user') throw new Forbidden('personal-token-needs-user', 'only a user can hold a personal token');
        if (!decide(caller, { type: 'token', action: 'create', ownerId: caller.id }, catalog).allowed) throw new Forbidden('cannot-create-token');
        for (const p of scopes ?? []) {
          if (!holdsAnywhere(caller, p, catalog)) throw new Forbidden('scope-escalation', `you do not hold ${formatScope(p)}`);
        }
      } else if (kind === 'org') {
        if (!(await this.deps.store.orgs.getOrg(orgId!))) {
          // Not visible either way: 404 rather than telling who may see which org exists.
          throw new NotFound();
        }
        const may = decide(caller, { type: 'token', action: 'create', orgId: orgId! }, catalog);
        if (!may.allowed) throw decide(caller, { type: 'org', action: 'read', orgId: orgId! }, catalog).allowed ? new Forbidden('cannot-create-token') : new NotFound();
        for (const p of scopes ?? [ALL]) {
          if (!decide(caller, { type: p.resource, action: p.action, orgId: orgId! }, catalog).allowed) throw new Forbidden('scope-escalation', `you do not hold ${formatScope(p)} in ${orgId}`);
        }
      } else {
        const may = decide(caller, { type: 'token', action: 'create' }, catalog);
        if (!may.allowed) throw new Forbidden('cannot-create-token', 'site tokens are created by site admins');
        for (const p of scopes ?? [ALL]) {
          const d = decide(caller, { type: p.resource, action: p.action }, catalog);
          if (!d.allowed || d.level !== 'site') throw new Forbidden('scope-escalation', `you do not hold ${formatScope(p)} site-wide`);
        }
      }

      const t = generateToken();
      const record: TokenRecord = {
        id: t.id,
        kind,
        name: body.name,
        ...(kind === 'personal' ? { ownerId: caller.id } : {}),
        ...(orgId ? { orgId } : {}),
        ...(scopes ? { scopes: scopes.map(formatScope) } : {}),
        secretHash: hashSecret(t.secret),
        createdAt: nowS,
        expiresAt: nowS + (body.expiresInDays ?? 365) * DAY,
        createdBy: caller.token ? `token:${caller.token.id}` : caller.id,
      };
      await this.deps.store.tokens.createToken(record);
      this.deps.logger.info('token.created', { tokenId: t.id, kind, orgId, actor: caller.id });
      return { status: 201, headers: { location: `/tokens/${t.id}` }, body: { ...tokenView(record, nowS), token: t.token } };
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
    if (!decide(caller, object, catalog).allowed) throw new NotFound();
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

  async rotate(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'token.rotate', target: `token:${String(req.params.id).slice(0, 40)}` }, async () => {
      const body = req.body === undefined ? {} : parseBody(rotateSchema, req.body);
      const { token } = await this.visibleToken(req, 'update');
      const nowS = nowSeconds(this.deps);
      if (token.revokedAt !== undefined) throw new NotFound();
      if (token.expiresAt <= nowS) throw new Gone('token-expired', 'the token has expired; create a new one');
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


import type { LruCache } from '../cache/lru';
import { Unauthenticated } from '../errors';
import { credentialKind } from '../identity/credential';
import { sha256Base64url } from '../identity/digest';
import type { VerifiedJwt } from '../identity/jwt';
import { parseToken, secretMatches } from '../identity/token-format';
import { storedScopes } from '../rbac/permissions';
import type { Principal } from '../rbac/types';
import type { AuthorizerStore, TokenRecord, UserRecord } from '../store/types';

/** Verifies JWTs; the real one is `JwtVerifier`. */
export interface JwtVerifierLike {
  verify(token: string): Promise<VerifiedJwt>;
}

/** A presented token that exists but was refused (bad secret, revoked, expired): 401, logged to its access log. */
export class TokenRejected extends Unauthenticated {
  constructor(code: 'token-bad-secret' | 'token-revoked' | 'token-expired', readonly token: TokenRecord) {
    super(code);
  }
}

/** Who a credential stands for: the principal and, for a gatehouse token, its record. */
export interface Credential {
  principal: Principal;
  /** Set for gatehouse tokens: the record that was verified. */
  token?: TokenRecord;
}

/** A credential resolved by the authorizer, and until when that resolution may be reused. */
export interface ResolvedCredential extends Credential {
  /** Cache TTL, never past the credential's own expiry (ms). */
  validUntilMs: number;
}

/** A record read from the store, and until when it may be used without reading it again (ms). */
export interface Fresh<T> {
  value: T;
  freshUntilMs: number;
}

/** The caches a resolver reads through; see `caches.ts` for their bounds. */
export interface ResolverCaches {
  /** Resolved credentials by the credential's SHA-256 (never the credential itself). */
  resolved: LruCache<string, ResolvedCredential>;
  /** Site roles and memberships by user id. */
  users: LruCache<string, Fresh<UserRecord>>;
  /** Token records by id; `null` remembers an unknown id. */
  tokens: LruCache<string, Fresh<TokenRecord | null>>;
}

/**
 * Turns a credential into a principal: a JWT (verified first, so a forged token never
 * causes a read) or a gatehouse token (format and checksum checked offline first, then
 * the stored hash compared in constant time). Users and tokens are cached for at most
 * `cacheTtlSeconds`; a resolution lives as long as the freshest of what it was read
 * from allows (so never longer than the TTL from the oldest read) and never outlives
 * its credential.
 */
export class PrincipalResolver {
  constructor(
    private readonly deps: {
      store: AuthorizerStore;
      jwt: JwtVerifierLike;
      now: () => number;
      cacheTtlSeconds: number;
      caches: ResolverCaches;
    },
  ) {}

  /**
   * Resolves or throws `Unauthenticated` (401; `TokenRejected` for a known token) / `StoreError` / `KeySourceError` (fail closed).
   * `digest`: the credential's SHA-256 when the caller has it (`AuthzRequest.credentialDigest`).
   */
  async resolve(credential: string, digest = sha256Base64url(credential)): Promise<ResolvedCredential> {
    const hit = this.deps.caches.resolved.get(digest);
    if (hit) return hit;
    const nowMs = this.deps.now();
    let resolved: ResolvedCredential;
    if (credentialKind(credential) === 'gatehouse') {
      const { principal, token, freshUntilMs } = await this.resolveToken(credential, nowMs);
      resolved = { principal, token, validUntilMs: Math.min(token.expiresAt * 1000, freshUntilMs) };
    } else {
      const jwt = await this.deps.jwt.verify(credential);
      const user = await this.loadUser(jwt.userId);
      resolved = { principal: jwtPrincipal(jwt, user.value), validUntilMs: Math.min(jwt.exp * 1000, user.freshUntilMs) };
    }
    // Claims dominate a resolution's size; the credential's length is a fair measure of them.
    this.deps.caches.resolved.set(digest, resolved, resolved.validUntilMs - nowMs, 1024 + 3 * credential.length);
    return resolved;
  }

  /** A user's roles, cached for at most the cache TTL from when they were read. */
  private async loadUser(userId: string): Promise<Fresh<UserRecord>> {
    const cached = this.deps.caches.users.get(userId);
    if (cached) return cached;
    const ttlMs = this.deps.cacheTtlSeconds * 1000;
    // Freshness counts from before the read: it is never overstated.
    const read = { freshUntilMs: this.deps.now() + ttlMs, value: await this.deps.store.loadUser(userId) };
    this.deps.caches.users.set(userId, read, ttlMs, userBytes(read.value));
    return read;
  }

  /**
   * Re-resolves the caller of an admin function from the authorizer context API
   * Gateway passed on (`principalId`, `kind`, `tokenId`, `userId`, `email`), reading
   * roles and the token afresh so a revoked token or a demoted user is refused here too.
   */
  async fromContext(ctx: Record<string, unknown> | undefined): Promise<Credential> {
    if (!ctx || typeof ctx !== 'object') throw new Unauthenticated('no-authorizer-context');
    const kind = ctx.kind;
    if (kind === 'token') {
      const tokenId = ctx.tokenId;
      if (typeof tokenId !== 'string') throw new Unauthenticated('no-authorizer-context');
      const record = (await this.loadToken(tokenId)).value;
      if (!record) throw new Unauthenticated('token-unknown');
      if (record.revokedAt !== undefined) throw new TokenRejected('token-revoked', record);
      if (!(record.expiresAt > Math.floor(this.deps.now() / 1000))) throw new TokenRejected('token-expired', record);
      return { principal: (await this.tokenPrincipal(record)).value, token: record };
    }
    if (kind === 'user') {
      const userId = ctx.userId ?? ctx.principalId;
      if (typeof userId !== 'string' || userId === '') throw new Unauthenticated('no-authorizer-context');
      const user = (await this.loadUser(userId)).value;
      // The authorizer only passes an email on when it was verified.
      const email = typeof ctx.email === 'string' && ctx.email !== '' ? ctx.email : undefined;
      return {
        principal: { id: userId, kind: 'user', siteRoles: user.siteRoles, orgs: user.orgs, ...(email ? { email, emailVerified: true } : { emailVerified: false }) },
      };
    }
    throw new Unauthenticated('no-authorizer-context');
  }

  /** A token record (`null`: no such token), cached for at most the cache TTL from when it was read. */
  private async loadToken(id: string): Promise<Fresh<TokenRecord | null>> {
    const cached = this.deps.caches.tokens.get(id);
    if (cached) return cached;
    const ttlMs = this.deps.cacheTtlSeconds * 1000;
    const read = { freshUntilMs: this.deps.now() + ttlMs, value: (await this.deps.store.getToken(id)) ?? null };
    // Unknown ids are cached too (briefly), so a flood of one forged id costs one read.
    this.deps.caches.tokens.set(id, read, ttlMs, 1024);
    return read;
  }

  private async resolveToken(credential: string, nowMs: number): Promise<{ principal: Principal; token: TokenRecord; freshUntilMs: number }> {
    const parsed = parseToken(credential);
    // Malformed or bad checksum: rejected without touching DynamoDB.
    if (!parsed) throw new Unauthenticated('token-malformed');
    const read = await this.loadToken(parsed.id);
    const record = read.value;
    if (!record) throw new Unauthenticated('token-unknown');
    const nowS = Math.floor(nowMs / 1000);
    const current = secretMatches(parsed.secret, record.secretHash);
    const previous =
      !current &&
      record.previousSecretHash !== undefined &&
      record.previousValidUntil !== undefined &&
      record.previousValidUntil > nowS &&
      secretMatches(parsed.secret, record.previousSecretHash);
    if (!current && !previous) throw new TokenRejected('token-bad-secret', record);
    if (record.revokedAt !== undefined) throw new TokenRejected('token-revoked', record);
    // DynamoDB TTL deletes days late: expiry is checked on every read.
    if (!(record.expiresAt > nowS)) throw new TokenRejected('token-expired', record);
    const principal = await this.tokenPrincipal(record);
    return { principal: principal.value, token: record, freshUntilMs: Math.min(read.freshUntilMs, principal.freshUntilMs) };
  }

  /** A token's principal, and until when what it was built from is fresh (a personal token's owner's roles). */
  private async tokenPrincipal(record: TokenRecord): Promise<Fresh<Principal>> {
    // A stored scope that no longer parses grants nothing (fail closed).
    const scopes = storedScopes(record.scopes);
    const tokenInfo = { id: record.id, kind: record.kind, ...(scopes ? { scopes } : {}) };
    switch (record.kind) {
      case 'personal': {
        if (!record.ownerId) throw new Unauthenticated('token-corrupt');
        const owner = await this.loadUser(record.ownerId);
        const { siteRoles, orgs } = owner.value;
        return { value: { id: record.ownerId, kind: 'user', siteRoles, orgs, token: { ...tokenInfo, ownerId: record.ownerId } }, freshUntilMs: owner.freshUntilMs };
      }
      case 'org': {
        if (!record.orgId) throw new Unauthenticated('token-corrupt');
        const orgs = Object.create(null) as Record<string, string[]>;
        orgs[record.orgId] = [];
        return { value: { id: `token:${record.id}`, kind: 'service', siteRoles: [], orgs, token: { ...tokenInfo, orgId: record.orgId } }, freshUntilMs: Infinity };
      }
      case 'site':
        return { value: { id: `token:${record.id}`, kind: 'service', siteRoles: [], orgs: Object.create(null), token: tokenInfo }, freshUntilMs: Infinity };
    }
  }
}

/** The principal of a verified JWT: roles from the user record, identity attributes from the token. */
function jwtPrincipal(jwt: VerifiedJwt, user: UserRecord): Principal {
  const principal: Principal = { id: jwt.userId, kind: 'user', siteRoles: user.siteRoles, orgs: user.orgs, emailVerified: jwt.emailVerified, claims: jwt.claims };
  if (jwt.email !== undefined) principal.email = jwt.email;
  if (jwt.groups) principal.groups = jwt.groups;
  return principal;
}

/** A user record's size in a cache, roughly: its role names dominate. */
function userBytes(user: UserRecord): number {
  let n = 256 + 2 * user.userId.length;
  for (const r of user.siteRoles) n += 48 + 2 * r.length;
  for (const [org, roles] of Object.entries(user.orgs)) {
    n += 96 + 2 * org.length;
    for (const r of roles) n += 48 + 2 * r.length;
  }
  return n;
}

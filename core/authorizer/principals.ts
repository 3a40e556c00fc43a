import { LruCache } from '../cache/lru';
import { Unauthenticated, type KeySourceError } from '../errors';
import { credentialKind } from '../identity/credential';
import { sha256Base64url } from '../identity/digest';
import { parseToken, secretMatches } from '../identity/token-format';
import type { PendingJwt, VerifiedJwt } from '../identity/jwt';
import { parseScope } from '../rbac/permissions';
import type { Permission, Principal } from '../rbac/types';
import type { AuthorizerStore, TokenRecord, UserRecord } from '../store/types';

/** Verifies JWTs; the real one is `JwtVerifier`. */
export interface JwtVerifierLike {
  begin(token: string, tokenHash?: string): Promise<PendingJwt>;
}

/** A presented token that exists but was refused (bad secret, revoked, expired): 401, logged to its access log. */
export class TokenRejected extends Unauthenticated {
  constructor(code: string, readonly token: TokenRecord) {
    super(code);
  }
}

/** What a resolved credential is, beyond the principal (for access logs and context). */
export interface ResolvedCredential {
  principal: Principal;
  /** Set for gatehouse tokens: the record that was verified. */
  token?: TokenRecord;
  /** Until when this resolution may be reused (cache TTL, never past the credential's expiry). */
  validUntilMs?: number;
}

/**
 * A resolution that may still wait for its JWT's signature (see `resolveEarly`):
 * `confirmed` settles, never rejects, with undefined once the token is known valid (the
 * resolution is then cached), or with the error that refuses it.
 */
export interface EarlyResolution {
  value: ResolvedCredential;
  confirmed?: Promise<Unauthenticated | KeySourceError | undefined>;
}

/**
 * Turns a credential into a principal: a JWT (verified by `jose`) or a gatehouse
 * token (format and checksum checked offline first, then the stored hash compared
 * in constant time). Users and tokens are cached for at most `cacheTtlSeconds`.
 */
export class PrincipalResolver {
  private readonly users: LruCache<string, UserRecord>;
  private readonly tokens: LruCache<string, TokenRecord | null>;
  private readonly resolved: LruCache<string, { value: ResolvedCredential & { expMs?: number }; validUntilMs: number }>;

  constructor(
    private readonly deps: {
      store: AuthorizerStore;
      jwt: JwtVerifierLike;
      now: () => number;
      cacheTtlSeconds: number;
      maxEntries?: number;
    },
  ) {
    const max = deps.maxEntries ?? 10_000;
    this.users = new LruCache({ maxEntries: max, now: deps.now });
    this.tokens = new LruCache({ maxEntries: max, now: deps.now });
    this.resolved = new LruCache({ maxEntries: max, now: deps.now });
  }

  /** Resolves or throws `Unauthenticated` (401) / `StoreError` / `KeySourceError` (fail closed). */
  async resolve(credential: string): Promise<ResolvedCredential> {
    const early = await this.resolveEarly(credential);
    const failure = early.confirmed && (await early.confirmed);
    if (failure) throw failure;
    return early.value;
  }

  /**
   * Like `resolve`, but a new JWT of a user whose roles are cached resolves while its
   * signature is still being checked: the principal comes from the token's claims, and
   * nothing may come of it unless `confirmed` settles with no error. Only then is the
   * resolution cached. Without cached roles the signature is awaited first: an
   * unverified token never causes a read.
   */
  async resolveEarly(credential: string): Promise<EarlyResolution> {
    // Warm path: the same credential within the cache TTL (and never past its own expiry)
    // resolves to the same principal object without hashing twice or re-verifying.
    const key = sha256Base64url(credential);
    const nowMs = this.deps.now();
    const hit = this.resolved.get(key);
    if (hit && hit.validUntilMs > nowMs) return { value: hit.value };
    if (credentialKind(credential) === 'gatehouse') return { value: this.remember(key, await this.resolveToken(credential), nowMs) };
    const pending = await this.deps.jwt.begin(credential, key);
    const preview = pending.unverified;
    const user = preview && this.users.get(preview.userId);
    if (!preview || !user) {
      const failure = await pending.outcome;
      if (failure) throw failure;
      // (Claims that fail always come with a failure; this only satisfies the type.)
      const jwt: VerifiedJwt | undefined = preview;
      if (!jwt) throw new Unauthenticated('jwt-claim-invalid');
      return { value: this.remember(key, jwtPrincipal(jwt, await this.loadUser(jwt.userId)), nowMs) };
    }
    const value = jwtPrincipal(preview, user);
    const confirmed = pending.outcome.then((failure) => {
      if (!failure) this.remember(key, value, nowMs);
      return failure;
    });
    value.validUntilMs = this.validUntil(value, nowMs);
    return { value, confirmed };
  }

  /** Until when a resolution may be reused: the cache TTL, never past the credential's own expiry. */
  private validUntil(value: ResolvedCredential & { expMs?: number }, nowMs: number): number {
    const expiry = value.token ? value.token.expiresAt * 1000 : value.expMs ?? nowMs;
    return Math.min(expiry, nowMs + this.deps.cacheTtlSeconds * 1000);
  }

  /** Caches a resolution of a valid credential (for as long as `validUntil` allows) and returns it. */
  private remember(key: string, value: ResolvedCredential & { expMs?: number }, nowMs: number): ResolvedCredential {
    const validUntilMs = this.validUntil(value, nowMs);
    value.validUntilMs = validUntilMs;
    if (validUntilMs > nowMs) this.resolved.set(key, { value, validUntilMs }, validUntilMs - nowMs);
    return value;
  }

  /** A user's roles, cached for at most the cache TTL. */
  async loadUser(userId: string): Promise<UserRecord> {
    const cached = this.users.get(userId);
    if (cached) return cached;
    const user = await this.deps.store.loadUser(userId);
    this.users.set(userId, user, this.deps.cacheTtlSeconds * 1000);
    return user;
  }

  /**
   * Re-resolves the caller of an admin function from the authorizer context API
   * Gateway passed on (`principalId`, `kind`, `tokenId`, `userId`, `email`), reading
   * roles and the token afresh so a revoked token or a demoted user is refused here too.
   */
  async fromContext(ctx: Record<string, unknown> | undefined): Promise<ResolvedCredential> {
    if (!ctx || typeof ctx !== 'object') throw new Unauthenticated('no-authorizer-context');
    const kind = ctx.kind;
    if (kind === 'token') {
      const tokenId = ctx.tokenId;
      if (typeof tokenId !== 'string') throw new Unauthenticated('no-authorizer-context');
      const record = await this.loadToken(tokenId);
      if (!record) throw new Unauthenticated('token-unknown');
      if (record.revokedAt !== undefined) throw new TokenRejected('token-revoked', record);
      if (!(record.expiresAt > Math.floor(this.deps.now() / 1000))) throw new TokenRejected('token-expired', record);
      return { principal: await this.tokenPrincipal(record), token: record };
    }
    if (kind === 'user') {
      const userId = ctx.userId ?? ctx.principalId;
      if (typeof userId !== 'string' || userId === '') throw new Unauthenticated('no-authorizer-context');
      const user = await this.loadUser(userId);
      // The authorizer only passes an email on when it was verified.
      const email = typeof ctx.email === 'string' && ctx.email !== '' ? ctx.email : undefined;
      return {
        principal: { id: userId, kind: 'user', siteRoles: user.siteRoles, orgs: user.orgs, ...(email ? { email, emailVerified: true } : { emailVerified: false }) },
      };
    }
    throw new Unauthenticated('no-authorizer-context');
  }

  private async loadToken(id: string): Promise<TokenRecord | undefined> {
    const cached = this.tokens.get(id);
    if (cached !== undefined) return cached ?? undefined;
    const record = await this.deps.store.getToken(id);
    // Unknown ids are cached too (briefly), so a flood of one forged id costs one read.
    this.tokens.set(id, record ?? null, this.deps.cacheTtlSeconds * 1000);
    return record;
  }

  private async resolveToken(credential: string): Promise<ResolvedCredential> {
    const parsed = parseToken(credential);
    // Malformed or bad checksum: rejected without touching DynamoDB.
    if (!parsed) throw new Unauthenticated('token-malformed');
    const record = await this.loadToken(parsed.id);
    if (!record) throw new Unauthenticated('token-unknown');
    const nowS = Math.floor(this.deps.now() / 1000);
    const fail = (code: string): never => {
      throw new TokenRejected(code, record);
    };
    const current = secretMatches(parsed.secret, record.secretHash);
    const previous =
      !current &&
      record.previousSecretHash !== undefined &&
      record.previousValidUntil !== undefined &&
      record.previousValidUntil > nowS &&
      secretMatches(parsed.secret, record.previousSecretHash);
    if (!current && !previous) return fail('token-bad-secret');
    if (record.revokedAt !== undefined) return fail('token-revoked');
    // DynamoDB TTL deletes days late: expiry is checked on every read.
    if (!(record.expiresAt > nowS)) return fail('token-expired');
    return { principal: await this.tokenPrincipal(record), token: record };
  }

  private async tokenPrincipal(record: TokenRecord): Promise<Principal> {
    let scopes: Permission[] | undefined;
    if (record.scopes !== undefined) {
      try {
        scopes = record.scopes.map(parseScope);
      } catch {
        // A stored scope that no longer parses grants nothing (fail closed).
        scopes = [];
      }
    }
    const tokenInfo = { id: record.id, kind: record.kind, ...(scopes ? { scopes } : {}) };
    switch (record.kind) {
      case 'personal': {
        if (!record.ownerId) throw new Unauthenticated('token-corrupt');
        const owner = await this.loadUser(record.ownerId);
        return { id: record.ownerId, kind: 'user', siteRoles: owner.siteRoles, orgs: owner.orgs, token: { ...tokenInfo, ownerId: record.ownerId } };
      }
      case 'org': {
        if (!record.orgId) throw new Unauthenticated('token-corrupt');
        const orgs = Object.create(null) as Record<string, string[]>;
        orgs[record.orgId] = [];
        return { id: `token:${record.id}`, kind: 'service', siteRoles: [], orgs, token: { ...tokenInfo, orgId: record.orgId } };
      }
      case 'site':
        return { id: `token:${record.id}`, kind: 'service', siteRoles: [], orgs: Object.create(null), token: tokenInfo };
    }
  }
}

/** The principal of a verified JWT: roles from the user record, identity attributes from the token. */
function jwtPrincipal(jwt: VerifiedJwt, user: UserRecord): ResolvedCredential & { expMs: number } {
  const principal: Principal = { id: jwt.userId, kind: 'user', siteRoles: user.siteRoles, orgs: user.orgs, emailVerified: jwt.emailVerified, claims: jwt.claims };
  if (jwt.email !== undefined) principal.email = jwt.email;
  if (jwt.groups) principal.groups = jwt.groups;
  return { expMs: jwt.exp * 1000, principal };
}

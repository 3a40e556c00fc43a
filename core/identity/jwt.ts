import { createHash } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { LruCache } from '../cache/lru';
import type { IssuerConfig } from '../config/issuers';
import { KeySourceError, Unauthenticated } from '../errors';
import { RemoteJwks } from './jwks';

/** What a verified JWT yields. Only verified tokens ever produce claims. */
export interface VerifiedJwt {
  issuer: string;
  userId: string;
  sub: string;
  email?: string;
  emailVerified: boolean;
  groups?: string[];
  claims: Record<string, unknown>;
  /** Expiry, epoch seconds. */
  exp: number;
}

/** Longer tokens are refused before any parsing. */
export const MAX_JWT_LENGTH = 8192;
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit'];
const CACHE_MAX_MS = 10 * 60_000;

/**
 * Verifies JWTs from configured issuers only (chosen by exact `iss`), with each
 * issuer's algorithm allow-list, required `exp`, and `aud`/`nbf`/`typ`/max-age as
 * configured. Construction does no I/O (module scope in Lambda). Verified tokens
 * are cached by SHA-256, never past their `exp`.
 */
export class JwtVerifier {
  private readonly issuers = new Map<string, { config: IssuerConfig; getKey: JWTVerifyGetKey; remote?: RemoteJwks }>();
  private readonly cache: LruCache<string, VerifiedJwt> | undefined;
  private readonly now: () => number;

  constructor(opts: { issuers: IssuerConfig[]; fetch?: typeof fetch; now?: () => number; cacheSize?: number; jwksTimeoutMs?: number }) {
    this.now = opts.now ?? Date.now;
    // cacheSize 0: no cache (a caller that caches resolved principals itself, like the authorizer).
    this.cache = opts.cacheSize === 0 ? undefined : new LruCache({ maxEntries: opts.cacheSize ?? 10_000, now: this.now });
    for (const config of opts.issuers) {
      if (config.jwks) {
        this.issuers.set(config.issuer, { config, getKey: createLocalJWKSet(config.jwks as never) });
      } else {
        const remote = new RemoteJwks(config, { ...(opts.fetch ? { fetch: opts.fetch } : {}), now: this.now, ...(opts.jwksTimeoutMs ? { timeoutMs: opts.jwksTimeoutMs } : {}) });
        this.issuers.set(config.issuer, { config, getKey: remote.getKey, remote });
      }
    }
  }

  /** The remote key source of an issuer (tests and metrics). */
  remote(issuer: string): RemoteJwks | undefined {
    return this.issuers.get(issuer)?.remote;
  }

  /**
   * Verifies or throws `Unauthenticated` (401, stable code) or `KeySourceError` (fail closed).
   * `tokenHash` lets a caller that already hashed the token skip hashing it again.
   */
  async verify(token: string, tokenHash?: string): Promise<VerifiedJwt> {
    if (typeof token !== 'string' || token.length === 0) throw new Unauthenticated('jwt-malformed');
    if (token.length > MAX_JWT_LENGTH) throw new Unauthenticated('jwt-too-large');
    const nowMs = this.now();
    const key = this.cache ? tokenHash ?? createHash('sha256').update(token).digest('base64url') : '';
    const hit = this.cache?.get(key);
    if (hit && hit.exp * 1000 > nowMs) return hit;

    let header: ReturnType<typeof decodeProtectedHeader>;
    let payload: ReturnType<typeof decodeJwt>;
    try {
      if (token.split('.').length !== 3) throw new Error('parts');
      header = decodeProtectedHeader(token);
      payload = decodeJwt(token);
    } catch {
      throw new Unauthenticated('jwt-malformed');
    }
    if (typeof payload.iss !== 'string') throw new Unauthenticated('jwt-unknown-issuer');
    const issuer = this.issuers.get(payload.iss);
    if (!issuer) throw new Unauthenticated('jwt-unknown-issuer');
    const cfg = issuer.config;
    for (const h of FORBIDDEN_HEADERS) if (h in header) throw new Unauthenticated('jwt-forbidden-header');
    if (typeof header.alg !== 'string' || !(cfg.algorithms as string[]).includes(header.alg)) throw new Unauthenticated('jwt-alg-not-allowed');

    let verified: Awaited<ReturnType<typeof jwtVerify>>;
    try {
      verified = await jwtVerify(token, issuer.getKey, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        algorithms: cfg.algorithms,
        clockTolerance: cfg.clockToleranceSeconds,
        currentDate: new Date(nowMs),
        requiredClaims: cfg.maxTokenAgeSeconds !== undefined ? ['exp', 'iat', 'sub'] : ['exp', 'sub'],
        ...(cfg.typ ? { typ: cfg.typ } : {}),
        ...(cfg.maxTokenAgeSeconds !== undefined ? { maxTokenAge: cfg.maxTokenAgeSeconds } : {}),
      });
    } catch (err) {
      if (err instanceof KeySourceError) throw err;
      throw new Unauthenticated(codeFor(err));
    }
    const claims = verified.payload as Record<string, unknown>;
    const sub = claims.sub;
    if (typeof sub !== 'string' || sub === '' || sub.length > 255) throw new Unauthenticated('jwt-no-sub');
    const exp = claims.exp as number;
    const nowS = Math.floor(nowMs / 1000);
    if (typeof claims.iat === 'number' && claims.iat > nowS + cfg.clockToleranceSeconds) throw new Unauthenticated('jwt-claim-invalid');
    if (cfg.maxTokenAgeSeconds !== undefined) {
      const iat = claims.iat as number;
      if (exp - iat > cfg.maxTokenAgeSeconds) throw new Unauthenticated('jwt-too-old');
    }
    const email = claims[cfg.emailClaim];
    const groups = claims[cfg.groupsClaim];
    const result: VerifiedJwt = {
      issuer: cfg.issuer,
      sub,
      userId: cfg.userIdPrefix + sub,
      ...(typeof email === 'string' && email.length <= 320 ? { email } : {}),
      emailVerified: typeof email === 'string' && (claims.email_verified === true || cfg.trustEmail),
      ...(Array.isArray(groups) && groups.every((g) => typeof g === 'string') ? { groups: (groups as string[]).slice(0, 100) } : {}),
      claims,
      exp,
    };
    this.cache?.set(key, result, Math.min(CACHE_MAX_MS, exp * 1000 - nowMs));
    return result;
  }
}

function codeFor(err: unknown): string {
  const code = (err as { code?: string })?.code;
  const claim = (err as { claim?: string })?.claim;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      // jose reports maxTokenAge (now - iat) as an expiry of the iat claim.
      return claim === 'iat' ? 'jwt-too-old' : 'jwt-expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'nbf') return 'jwt-not-yet-valid';
      if (claim === 'typ') return 'jwt-typ';
      if (claim === 'iat' && /age|too old/i.test(String((err as Error).message))) return 'jwt-too-old';
      if (claim === 'sub') return 'jwt-no-sub';
      return 'jwt-claim-invalid';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'jwt-bad-signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'jwt-alg-not-allowed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'jwt-unknown-key';
    default:
      return 'jwt-malformed';
  }
}

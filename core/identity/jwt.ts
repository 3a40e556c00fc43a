import { types } from 'node:util';
import { createLocalJWKSet, jwtVerify, type CryptoKey, type JWTVerifyGetKey, type JWTVerifyOptions, type JWTVerifyResult } from 'jose';
import { LruCache } from '../cache/lru';
import type { IssuerConfig } from '../config/issuers';
import { KeySourceError, Unauthenticated } from '../errors';
import { sha256Base64url } from './digest';
import { RemoteJwks } from './jwks';

/** What a verified JWT yields. Only verified tokens ever produce claims. Frozen. */
export interface VerifiedJwt {
  /** The configured issuer that vouched for the token (its exact `iss`). */
  issuer: string;
  /** `userIdPrefix + sub`. */
  userId: string;
  sub: string;
  /** The issuer's email claim, when it is a string. */
  email?: string;
  /** True only with `email_verified: true` (the boolean) or an issuer configured with `trustEmail`. */
  emailVerified: boolean;
  /** The issuer's groups claim, when it is an array of strings. */
  groups?: string[];
  claims: Record<string, unknown>;
  /** Expiry, epoch seconds. */
  exp: number;
}

/** Options of a {@link JwtVerifier}; everything but `issuers` has a production default. */
export interface JwtVerifierOptions {
  issuers: IssuerConfig[];
  /** For remote key sets. Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** Clock in milliseconds. Default `Date.now`. */
  now?: () => number;
  /** Verified-token cache entries. Default 10 000; 0 turns the cache off. */
  cacheSize?: number;
  /** Remote key set request timeout. Default 1500 ms. */
  jwksTimeoutMs?: number;
}

/** Longer tokens are refused before any parsing (8 KB, as API Gateway's header budget suggests). */
export const MAX_JWT_LENGTH = 8192;
/** Longest accepted `sub`. */
export const MAX_SUB_LENGTH = 255;
/** Headers that would let the token choose its own key, or demand extensions: never honoured. */
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit'] as const;
const CACHE_MAX_MS = 10 * 60_000;
/** When several keys match a kid-less token, at most this many are tried. */
const MAX_KEY_CANDIDATES = 4;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

interface IssuerEntry {
  config: IssuerConfig;
  /**
   * The key jose's getter chose for an `(alg, kid)`, with the key-set generation it came
   * from (the entry itself for an inline set). A new token naming the same pair under the
   * same generation is verified with that key directly, skipping the getter.
   */
  keys: Map<string, { key: CryptoKey; generation: object }>;
  /** jose's options for this issuer, but the clock (frozen: shared by every call). */
  options: Readonly<JWTVerifyOptions>;
  getKey: JWTVerifyGetKey;
  remote?: RemoteJwks;
}

/**
 * Verifies JWTs from configured issuers only, chosen by exact `iss`: no discovery and
 * no keys named by the token (`jku`, `x5u`, `jwk`, `x5c` are refused, as is `crit`).
 * The issuer's algorithm allow-list is enforced before any key lookup; `exp` is
 * required; `aud`, `nbf`, `typ` and the maximum token age are enforced as configured.
 *
 * Every rejection is an `Unauthenticated` (401) with a stable code (`jwt-malformed`,
 * `jwt-too-large`, `jwt-unknown-issuer`, `jwt-forbidden-header`, `jwt-alg-not-allowed`,
 * `jwt-unknown-key`, `jwt-bad-signature`, `jwt-expired`, `jwt-not-yet-valid`,
 * `jwt-claim-invalid`, `jwt-no-sub`, `jwt-too-old`, `jwt-typ`) whose message never
 * contains the token; a key source that cannot answer throws `KeySourceError` (fail
 * closed). Verified tokens are cached by SHA-256, never past their `exp`.
 *
 * Construction is cheap and does no I/O, so build it once at module scope.
 */
export class JwtVerifier {
  private readonly issuers = new Map<string, IssuerEntry>();
  private readonly cache: LruCache<string, VerifiedJwt> | undefined;
  private readonly now: () => number;

  constructor(opts: JwtVerifierOptions) {
    this.now = opts.now ?? Date.now;
    // cacheSize 0: no cache (for a caller that caches resolved principals itself, like the authorizer).
    this.cache = opts.cacheSize === 0 ? undefined : new LruCache({ maxEntries: opts.cacheSize ?? 10_000, now: this.now });
    for (const config of opts.issuers) {
      if (config.jwks) {
        this.issuers.set(config.issuer, { config, keys: new Map(), options: joseOptions(config), getKey: createLocalJWKSet(config.jwks as never) });
      } else {
        const remote = new RemoteJwks(config, {
          now: this.now,
          ...(opts.fetch ? { fetch: opts.fetch } : {}),
          ...(opts.jwksTimeoutMs !== undefined ? { timeoutMs: opts.jwksTimeoutMs } : {}),
        });
        this.issuers.set(config.issuer, { config, keys: new Map(), options: joseOptions(config), getKey: remote.getKey, remote });
      }
    }
  }

  /** The remote key source of an issuer (tests and metrics). */
  remote(issuer: string): RemoteJwks | undefined {
    return this.issuers.get(issuer)?.remote;
  }

  /** Number of verified tokens currently cached. */
  get cachedCount(): number {
    return this.cache?.size ?? 0;
  }

  /**
   * Verifies `token` or throws `Unauthenticated` (401, stable code) or `KeySourceError`
   * (fail closed). `tokenHash` (base64url SHA-256 of the token) lets a caller that
   * already hashed the token skip hashing it again.
   */
  async verify(token: string, tokenHash?: string): Promise<VerifiedJwt> {
    if (typeof token !== 'string' || token.length === 0) throw new Unauthenticated('jwt-malformed', 'malformed JWT');
    if (token.length > MAX_JWT_LENGTH) throw new Unauthenticated('jwt-too-large', 'JWT too large');
    const nowMs = this.now();
    const cacheKey = this.cache ? (tokenHash ?? sha256Base64url(token)) : '';
    const hit = this.cache?.get(cacheKey);
    if (hit && hit.exp * 1000 > nowMs) return hit;

    const { header, iss } = decode(token);
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    if (!issuer) throw new Unauthenticated('jwt-unknown-issuer', 'unknown issuer');
    const cfg = issuer.config;
    // Before any key lookup: the token must not choose its key, nor its algorithm.
    for (const h of FORBIDDEN_HEADERS) if (Object.hasOwn(header, h)) throw new Unauthenticated('jwt-forbidden-header', `forbidden JWT header ${h}`);
    if (typeof header.alg !== 'string' || !(cfg.algorithms as string[]).includes(header.alg)) throw new Unauthenticated('jwt-alg-not-allowed', 'JWT algorithm not allowed');
    if (header.kid !== undefined && typeof header.kid !== 'string') throw new Unauthenticated('jwt-malformed', 'malformed JWT kid');

    // The issuer's fixed options are built once; only the clock is per call.
    const options: JWTVerifyOptions = { currentDate: new Date(nowMs), ...issuer.options };
    let verified: JWTVerifyResult;
    // Which key this (alg, kid) resolved to under the key set in use now, if known.
    const keyId = `${header.alg}\u0000${header.kid === undefined ? '' : `#${header.kid}`}`;
    const generation = issuerGeneration(issuer);
    const known = generation !== undefined ? issuer.keys.get(keyId) : undefined;
    try {
      if (known !== undefined && known.generation === generation) {
        verified = await jwtVerify(token, known.key, options);
      } else {
        verified = await jwtVerify(token, issuer.getKey, options);
        rememberKey(issuer, keyId, generation, verified);
      }
    } catch (err) {
      try {
        // Several keys matching a kid-less token are tried one by one; anything else is rethrown.
        verified = await tryCandidates(token, err, options);
      } catch (final) {
        if (final instanceof KeySourceError) throw final;
        const code = codeFor(final);
        throw new Unauthenticated(code, code.replace(/^jwt-/, 'JWT ').replace(/-/g, ' '));
      }
    }

    const result = buildResult(verified.payload as Record<string, unknown>, cfg, nowMs);
    this.cache?.set(cacheKey, result, Math.min(CACHE_MAX_MS, result.exp * 1000 - nowMs));
    return result;
  }
}

/** Key-set generations and remembered keys per issuer stay few: kids come from tokens. */
const MAX_REMEMBERED_KEYS = 64;

/** The key set an issuer's getter would use now (an inline set never changes), or undefined when none is fresh. */
function issuerGeneration(issuer: IssuerEntry): object | undefined {
  return issuer.remote ? issuer.remote.generation() : issuer;
}

/**
 * Remembers the key jose's getter chose for a token that verified, only when the key set
 * was the same (and fresh) before and after: a refresh in between (key rotation) must
 * never attach an old key to a new set.
 */
function rememberKey(issuer: IssuerEntry, keyId: string, before: object | undefined, verified: JWTVerifyResult): void {
  const key = (verified as { key?: unknown }).key;
  if (before === undefined || issuerGeneration(issuer) !== before || !types.isCryptoKey(key)) return;
  if (issuer.keys.size >= MAX_REMEMBERED_KEYS) issuer.keys.clear();
  issuer.keys.set(keyId, { key: key as CryptoKey, generation: before });
}

/** What jose enforces for an issuer: `iss`, `aud`, algorithms, clock tolerance, required claims, `typ`, maximum age. */
function joseOptions(cfg: IssuerConfig): Readonly<JWTVerifyOptions> {
  const options: JWTVerifyOptions = {
    issuer: cfg.issuer,
    audience: cfg.audience,
    algorithms: cfg.algorithms,
    clockTolerance: cfg.clockToleranceSeconds,
    requiredClaims: cfg.maxTokenAgeSeconds !== undefined ? ['exp', 'iat', 'sub'] : ['exp', 'sub'],
  };
  if (cfg.typ !== undefined) options.typ = cfg.typ;
  if (cfg.maxTokenAgeSeconds !== undefined) options.maxTokenAge = cfg.maxTokenAgeSeconds;
  return Object.freeze(options);
}

/** Reads the header and `iss` without trusting either (the payload is decoded only to pick the issuer). */
function decode(token: string): { header: Record<string, unknown>; iss: unknown } {
  if (!COMPACT_JWS.test(token)) throw new Unauthenticated('jwt-malformed', 'malformed JWT');
  const dot1 = token.indexOf('.');
  const dot2 = token.indexOf('.', dot1 + 1);
  const header = decodeSegment(token.slice(0, dot1));
  const payload = decodeSegment(token.slice(dot1 + 1, dot2));
  if (!header || !payload) throw new Unauthenticated('jwt-malformed', 'malformed JWT');
  return { header, iss: payload.iss };
}

/**
 * A base64url JSON object segment, or undefined. The characters were checked by
 * `COMPACT_JWS`; Node's native decoder is several times faster than jose's atob-based
 * one, which matters on every first-seen token (jose decodes again when it verifies).
 */
function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * jose's documented opt-in for a kid-less token that several keys match: each
 * candidate is tried (a bounded number) until one verifies. Any other error of
 * `jwtVerify` is thrown on.
 */
async function tryCandidates(token: string, err: unknown, options: JWTVerifyOptions): Promise<JWTVerifyResult> {
  if ((err as { code?: unknown })?.code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS' || !(Symbol.asyncIterator in (err as object))) throw err;
  let tried = 0;
  for await (const key of err as AsyncIterable<CryptoKey>) {
    if (++tried > MAX_KEY_CANDIDATES) break;
    try {
      return await jwtVerify(token, key, options);
    } catch (inner) {
      if ((inner as { code?: unknown })?.code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw inner;
    }
  }
  throw Object.assign(new Error('no candidate key verified the signature'), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
}

/** Checks jose leaves to us (sub, finite times, iat not ahead, exp - iat) and shapes the result. */
function buildResult(claims: Record<string, unknown>, cfg: IssuerConfig, nowMs: number): VerifiedJwt {
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub === '' || sub.length > MAX_SUB_LENGTH) throw new Unauthenticated('jwt-no-sub', 'JWT sub missing or invalid');
  const exp = claims.exp as number;
  // JSON numbers like 1e400 parse to Infinity, which jose takes as a valid (never-expiring) time.
  if (!Number.isFinite(exp)) throw new Unauthenticated('jwt-claim-invalid', 'JWT exp invalid');
  const iat = claims.iat;
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat) || iat > nowMs / 1000 + cfg.clockToleranceSeconds)) {
    throw new Unauthenticated('jwt-claim-invalid', 'JWT iat invalid or in the future');
  }
  if (cfg.maxTokenAgeSeconds !== undefined && exp - (iat as number) > cfg.maxTokenAgeSeconds) throw new Unauthenticated('jwt-too-old', 'JWT lifetime over the maximum token age');

  const email = claims[cfg.emailClaim];
  const groups = claims[cfg.groupsClaim];
  const hasEmail = typeof email === 'string' && email !== '';
  const result: VerifiedJwt = {
    issuer: cfg.issuer,
    sub,
    userId: cfg.userIdPrefix + sub,
    ...(hasEmail ? { email } : {}),
    emailVerified: hasEmail && (claims.email_verified === true || cfg.trustEmail),
    // All or nothing: dropping some groups could turn a "not in group" condition into an allow.
    ...(Array.isArray(groups) && groups.every((g) => typeof g === 'string') ? { groups: [...(groups as string[])] } : {}),
    claims,
    exp,
  };
  // Cached results are shared between callers: nobody may change them.
  return deepFreeze(result);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Maps jose's error codes to gatehouse's stable ones. */
function codeFor(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  const claim = (err as { claim?: unknown })?.claim;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      // jose reports maxTokenAge (now - iat) as an expiry of the iat claim.
      return claim === 'iat' ? 'jwt-too-old' : 'jwt-expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'nbf' && (err as { reason?: unknown }).reason === 'check_failed') return 'jwt-not-yet-valid';
      if (claim === 'typ') return 'jwt-typ';
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

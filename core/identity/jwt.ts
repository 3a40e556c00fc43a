import { isUtf8 } from 'node:buffer';
import { types } from 'node:util';
import { compactVerify, createLocalJWKSet, type CompactVerifyResult, type CryptoKey, type JWTVerifyGetKey, type VerifyOptions } from 'jose';
import { LruCache } from '../cache/lru';
import { userIdOwner, type IssuerConfig } from '../config/issuers';
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
  /** jose's signature options for this issuer: its algorithm allow-list (frozen: shared by every call). */
  signatureOptions: Readonly<VerifyOptions>;
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
 * `jwt-claim-invalid`, `jwt-no-sub`, `jwt-foreign-user-id`, `jwt-too-old`, `jwt-typ`) whose message never
 * contains the token; a key source that cannot answer throws `KeySourceError` (fail
 * closed). Verified tokens are cached by SHA-256, never past their `exp`.
 *
 * Construction is cheap and does no I/O, so build it once at module scope.
 */
export class JwtVerifier {
  private readonly issuers = new Map<string, IssuerEntry>();
  private readonly configs: readonly IssuerConfig[];
  private readonly cache: LruCache<string, VerifiedJwt> | undefined;
  private readonly now: () => number;

  constructor(opts: JwtVerifierOptions) {
    this.now = opts.now ?? Date.now;
    this.configs = opts.issuers;
    // cacheSize 0: no cache (for a caller that caches resolved principals itself, like the authorizer).
    this.cache = opts.cacheSize === 0 ? undefined : new LruCache({ maxEntries: opts.cacheSize ?? 10_000, now: this.now });
    for (const config of opts.issuers) {
      if (config.jwks) {
        this.issuers.set(config.issuer, { config, keys: new Map(), signatureOptions: signatureOptions(config), getKey: createLocalJWKSet(config.jwks as never) });
      } else {
        const remote = new RemoteJwks(config, {
          now: this.now,
          ...(opts.fetch ? { fetch: opts.fetch } : {}),
          ...(opts.jwksTimeoutMs !== undefined ? { timeoutMs: opts.jwksTimeoutMs } : {}),
        });
        this.issuers.set(config.issuer, { config, keys: new Map(), signatureOptions: signatureOptions(config), getKey: remote.getKey, remote });
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
    const pending = await this.begin(token, tokenHash);
    const failure = await pending.outcome;
    if (failure) throw failure;
    return pending.unverified as VerifiedJwt;
  }

  /**
   * Starts verifying `token` and returns once jose has handed its signature to
   * WebCrypto, which checks it on another thread: the caller may prepare work from
   * `unverified` meanwhile, and must throw that work away unless `outcome` settles with
   * no error. Throws at once what needs no key (`jwt-malformed`, `jwt-too-large`,
   * `jwt-unknown-issuer`, `jwt-forbidden-header`, `jwt-alg-not-allowed`); everything
   * else (signature, key, claims) is reported by `outcome`, the signature first.
   */
  async begin(token: string, tokenHash?: string): Promise<PendingJwt> {
    if (typeof token !== 'string' || token.length === 0) throw new Unauthenticated('jwt-malformed', 'malformed JWT');
    if (token.length > MAX_JWT_LENGTH) throw new Unauthenticated('jwt-too-large', 'JWT too large');
    const nowMs = this.now();
    const cacheKey = this.cache ? (tokenHash ?? sha256Base64url(token)) : '';
    const hit = this.cache?.get(cacheKey);
    if (hit && hit.exp * 1000 > nowMs) return { unverified: hit, outcome: VALID };

    const { header, claims } = decode(token);
    const iss = claims.iss;
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    if (!issuer) throw new Unauthenticated('jwt-unknown-issuer', 'unknown issuer');
    const cfg = issuer.config;
    // Before any key lookup: the token must not choose its key, nor its algorithm.
    for (const h of FORBIDDEN_HEADERS) if (Object.hasOwn(header, h)) throw new Unauthenticated('jwt-forbidden-header', `forbidden JWT header ${h}`);
    if (typeof header.alg !== 'string' || !(cfg.algorithms as string[]).includes(header.alg)) throw new Unauthenticated('jwt-alg-not-allowed', 'JWT algorithm not allowed');
    if (header.kid !== undefined && typeof header.kid !== 'string') throw new Unauthenticated('jwt-malformed', 'malformed JWT kid');

    // A handler is attached at once: a failure is a value from here on, never an unhandled rejection.
    const signature = verifySignature(issuer, header.alg, header.kid as string | undefined, token).then(
      () => undefined,
      (err: unknown) => (err instanceof KeySourceError ? err : unauthenticated(codeFor(err))),
    );
    // jose reaches WebCrypto a few microtask turns after the call (key checks); the
    // claims are checked after that, on this thread, while the signature is checked on another.
    for (let turn = 0; turn < SIGNATURE_DISPATCH_TURNS; turn++) await undefined;
    let result: VerifiedJwt | undefined;
    let claimsFailure: Unauthenticated | undefined;
    try {
      checkClaims(header, claims, cfg, nowMs);
      result = buildResult(claims, cfg, nowMs, this.configs);
    } catch (err) {
      claimsFailure = err instanceof Unauthenticated ? err : unauthenticated('jwt-claim-invalid');
    }
    const outcome = signature.then((failure) => {
      // The signature's verdict comes first (jose's order): a forged token is reported as forged.
      if (failure || claimsFailure) return failure ?? claimsFailure;
      this.cache?.set(cacheKey, result as VerifiedJwt, Math.min(CACHE_MAX_MS, (result as VerifiedJwt).exp * 1000 - nowMs));
      return undefined;
    });
    return { unverified: result, outcome };
  }
}

/** A token that verified (or was found verified in the cache): nothing left to wait for. */
const VALID: Promise<undefined> = Promise.resolve(undefined);

/**
 * Microtask turns between calling jose and its WebCrypto call with a remembered key
 * (`prepareKey`, `rawKey`); the key set's getter takes a few more, and the work after
 * the wait then simply does not overlap. A test pins the remembered-key case.
 */
const SIGNATURE_DISPATCH_TURNS = 3;

/** A JWT on its way through verification (see {@link JwtVerifier.begin}). */
export interface PendingJwt {
  /**
   * The token's claims, checked (times, issuer, audience, `typ`, `sub`) and shaped, but
   * NOT yet known to be signed by the issuer. Undefined when a claim fails (`outcome`
   * says why, once the signature is known).
   */
  readonly unverified: VerifiedJwt | undefined;
  /** Settles, never rejects: undefined when the token is valid, else the error to throw. */
  readonly outcome: Promise<Unauthenticated | KeySourceError | undefined>;
}

function unauthenticated(code: string): Unauthenticated {
  return new Unauthenticated(code, code.replace(/^jwt-/, 'JWT ').replace(/-/g, ' '));
}

/**
 * The signature, by jose's `compactVerify` (algorithm allow-list, key type, `crit`,
 * WebCrypto): with the key remembered for this (alg, kid) under the key set in use now,
 * or through the issuer's key set (and then remembered). The claims are ours to check:
 * they were parsed once, to choose the issuer.
 */
async function verifySignature(issuer: IssuerEntry, alg: string, kid: string | undefined, token: string): Promise<void> {
  const keyId = `${alg}\u0000${kid === undefined ? '' : `#${kid}`}`;
  const generation = issuerGeneration(issuer);
  const known = generation !== undefined ? issuer.keys.get(keyId) : undefined;
  try {
    if (known !== undefined && known.generation === generation) {
      await compactVerify(token, known.key, issuer.signatureOptions);
    } else {
      rememberKey(issuer, keyId, generation, await compactVerify(token, issuer.getKey, issuer.signatureOptions));
    }
  } catch (err) {
    // Several keys matching a kid-less token are tried one by one; anything else is rethrown.
    await tryCandidates(token, err, issuer.signatureOptions);
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
function rememberKey(issuer: IssuerEntry, keyId: string, before: object | undefined, verified: CompactVerifyResult): void {
  const key = (verified as { key?: unknown }).key;
  if (before === undefined || issuerGeneration(issuer) !== before || !types.isCryptoKey(key)) return;
  if (issuer.keys.size >= MAX_REMEMBERED_KEYS) issuer.keys.clear();
  issuer.keys.set(keyId, { key: key as CryptoKey, generation: before });
}

/** What jose enforces besides the signature itself: the issuer's algorithm allow-list (`crit` is refused before). */
function signatureOptions(cfg: IssuerConfig): Readonly<VerifyOptions> {
  return Object.freeze({ algorithms: [...cfg.algorithms] });
}

const normalizeTyp = (value: string): string => (value.includes('/') ? value.toLowerCase() : `application/${value.toLowerCase()}`);

/**
 * The registered claims, as jose's `jwtVerify` checks them (same rules, same order of
 * checks): `typ` when configured; `iss`, `aud`, `sub`, `exp` (and `iat` with a maximum
 * age) present; `iss` exact, `aud` one of the configured audiences; `iat`, `nbf`, `exp`
 * numbers; `nbf` not ahead and `exp` not past now (with the clock tolerance); the token
 * not older than the maximum age; `iat` not ahead of now (every token, not only with a
 * maximum age as in jose). Throws `Unauthenticated`.
 */
function checkClaims(header: Record<string, unknown>, claims: Record<string, unknown>, cfg: IssuerConfig, nowMs: number): void {
  if (cfg.typ !== undefined && (typeof header.typ !== 'string' || normalizeTyp(header.typ) !== normalizeTyp(cfg.typ))) invalid('jwt-typ');
  for (const claim of cfg.maxTokenAgeSeconds !== undefined ? PRESENT_WITH_AGE : PRESENT) {
    if (!Object.hasOwn(claims, claim)) invalid(claim === 'sub' ? 'jwt-no-sub' : 'jwt-claim-invalid');
  }
  if (claims.iss !== cfg.issuer) invalid();
  const aud = claims.aud;
  if (!(typeof aud === 'string' ? cfg.audience.includes(aud) : Array.isArray(aud) && cfg.audience.some((a) => aud.includes(a)))) invalid();
  const tolerance = cfg.clockToleranceSeconds;
  const now = Math.floor(nowMs / 1000);
  const { iat, nbf, exp } = claims;
  if (iat !== undefined && typeof iat !== 'number') invalid();
  if (nbf !== undefined && typeof nbf !== 'number') invalid();
  if (typeof nbf === 'number' && nbf > now + tolerance) invalid('jwt-not-yet-valid');
  if (typeof exp !== 'number') return invalid();
  if (exp <= now - tolerance) invalid('jwt-expired');
  if (cfg.maxTokenAgeSeconds !== undefined && now - (iat as number) - tolerance > cfg.maxTokenAgeSeconds) invalid('jwt-too-old');
  // Not issued ahead of now: jose checks this only with a maximum age, gatehouse for every token.
  if (typeof iat === 'number' && iat > now + tolerance) invalid();
}

/** A claim check failed. (Module-level: a closure made per call costs on every new token.) */
function invalid(code = 'jwt-claim-invalid'): never {
  throw unauthenticated(code);
}

/** Claims that must be present, in the order jose checks them. */
const PRESENT = ['iss', 'aud', 'sub', 'exp'] as const;
const PRESENT_WITH_AGE = ['iss', 'aud', 'iat', 'sub', 'exp'] as const;

/**
 * Reads the header and the claims without trusting either: the issuer is chosen by the
 * claims' `iss`, and jose checks the signature over exactly these segments.
 */
function decode(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  if (!COMPACT_JWS.test(token)) throw new Unauthenticated('jwt-malformed', 'malformed JWT');
  const dot1 = token.indexOf('.');
  const dot2 = token.indexOf('.', dot1 + 1);
  const header = decodeSegment(token.slice(0, dot1));
  const claims = decodeSegment(token.slice(dot1 + 1, dot2));
  if (!header || !claims) throw new Unauthenticated('jwt-malformed', 'malformed JWT');
  return { header, claims };
}

/**
 * A base64url JSON object segment in well-formed UTF-8 (as jose's strict decoder
 * requires), or undefined. The characters were checked by `COMPACT_JWS`; Node's native
 * decoder is several times faster than jose's atob-based one.
 */
function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const bytes = Buffer.from(segment, 'base64url');
    if (!isUtf8(bytes)) return undefined;
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * jose's documented opt-in for a kid-less token that several keys match: each
 * candidate is tried (a bounded number) until one verifies. Any other error of
 * `compactVerify` is thrown on.
 */
async function tryCandidates(token: string, err: unknown, options: VerifyOptions): Promise<CompactVerifyResult> {
  if ((err as { code?: unknown })?.code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS' || !(Symbol.asyncIterator in (err as object))) throw err;
  let tried = 0;
  for await (const key of err as AsyncIterable<CryptoKey>) {
    if (++tried > MAX_KEY_CANDIDATES) break;
    try {
      return await compactVerify(token, key, options);
    } catch (inner) {
      if ((inner as { code?: unknown })?.code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw inner;
    }
  }
  throw Object.assign(new Error('no candidate key verified the signature'), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
}

/** Checks beyond jose's rules (sub's form, finite times, exp - iat) and shapes the result. */
function buildResult(claims: Record<string, unknown>, cfg: IssuerConfig, nowMs: number, issuers: readonly IssuerConfig[]): VerifiedJwt {
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub === '' || sub.length > MAX_SUB_LENGTH) throw new Unauthenticated('jwt-no-sub', 'JWT sub missing or invalid');
  const exp = claims.exp as number;
  // JSON numbers like 1e400 parse to Infinity, which jose takes as a valid (never-expiring) time.
  if (!Number.isFinite(exp)) throw new Unauthenticated('jwt-claim-invalid', 'JWT exp invalid');
  const iat = claims.iat;
  if (iat !== undefined && !Number.isFinite(iat)) throw new Unauthenticated('jwt-claim-invalid', 'JWT iat invalid');
  if (cfg.maxTokenAgeSeconds !== undefined && exp - (iat as number) > cfg.maxTokenAgeSeconds) throw new Unauthenticated('jwt-too-old', 'JWT lifetime over the maximum token age');

  const userId = cfg.userIdPrefix + sub;
  // A user id belongs to the issuer with the longest prefix it starts with (DESIGN §2).
  if (userIdOwner(issuers, userId) !== cfg) throw new Unauthenticated('jwt-foreign-user-id', 'JWT user id belongs to another issuer');
  const email = claims[cfg.emailClaim];
  const groups = claims[cfg.groupsClaim];
  const hasEmail = typeof email === 'string' && email !== '';
  const result: VerifiedJwt = {
    issuer: cfg.issuer,
    sub,
    userId,
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

/** Maps the error codes of jose's signature check to gatehouse's stable ones (claims are checked by `checkClaims`). */
function codeFor(err: unknown): string {
  switch ((err as { code?: unknown })?.code) {
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

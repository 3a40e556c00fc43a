import { isUtf8 } from 'node:buffer';
import { userIdOwner, type IssuerConfig } from '../config/issuers';
import { Unauthenticated, type UnauthenticatedCode } from '../errors';
import type { RemoteJwks } from './jwks';
import { IssuerKeys } from './keys';
import { signatureValid } from './signature';

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
  /** Remote key set request timeout. Default 1500 ms. */
  jwksTimeoutMs?: number;
}

/** Longer tokens are refused before any parsing (8 KB, as API Gateway's header budget suggests). */
export const MAX_JWT_LENGTH = 8192;
/** Longest accepted `sub`. */
export const MAX_SUB_LENGTH = 255;
/** Headers that would let the token choose its own key, or demand extensions: never honoured. */
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit'] as const;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

interface IssuerEntry {
  config: IssuerConfig;
  keys: IssuerKeys;
}

/**
 * Verifies JWTs from configured issuers only, chosen by exact `iss`: no discovery and
 * no keys named by the token (`jku`, `x5u`, `jwk`, `x5c` are refused, as is `crit`).
 * The issuer's algorithm allow-list is enforced before any key lookup; the signature is
 * checked synchronously with `node:crypto` on the key jose selected (see
 * `signature.ts`); then the claims, once, in {@link checkClaims}.
 *
 * Every rejection is an `Unauthenticated` (401) with a stable code (`jwt-malformed`,
 * `jwt-too-large`, `jwt-unknown-issuer`, `jwt-forbidden-header`, `jwt-alg-not-allowed`,
 * `jwt-unknown-key`, `jwt-bad-signature`, `jwt-expired`, `jwt-not-yet-valid`,
 * `jwt-claim-invalid`, `jwt-no-sub`, `jwt-foreign-user-id`, `jwt-too-old`, `jwt-typ`) whose message never
 * contains the token; a key source that cannot answer throws `KeySourceError` (fail
 * closed). Nothing is cached here but keys (the authorizer caches resolved principals).
 *
 * Construction is cheap and does no I/O, so build it once at module scope.
 */
export class JwtVerifier {
  private readonly issuers = new Map<string, IssuerEntry>();
  private readonly configs: readonly IssuerConfig[];
  private readonly now: () => number;

  constructor(opts: JwtVerifierOptions) {
    this.now = opts.now ?? Date.now;
    this.configs = opts.issuers;
    const remote = {
      now: this.now,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
      ...(opts.jwksTimeoutMs !== undefined ? { timeoutMs: opts.jwksTimeoutMs } : {}),
    };
    for (const config of opts.issuers) this.issuers.set(config.issuer, { config, keys: new IssuerKeys(config, remote) });
  }

  /** The remote key source of an issuer (tests and metrics). */
  remote(issuer: string): RemoteJwks | undefined {
    return this.issuers.get(issuer)?.keys.remote;
  }

  /**
   * Verifies `token` or throws `Unauthenticated` (401, stable code) or `KeySourceError`
   * (fail closed). Waits only when the issuer's key for this token is not known yet.
   */
  async verify(token: string): Promise<VerifiedJwt> {
    if (typeof token !== 'string' || token.length === 0) throw unauthenticated('jwt-malformed');
    if (token.length > MAX_JWT_LENGTH) throw unauthenticated('jwt-too-large');
    if (!COMPACT_JWS.test(token)) throw unauthenticated('jwt-malformed');
    const dot1 = token.indexOf('.');
    const dot2 = token.indexOf('.', dot1 + 1);
    const header = decodeSegment(token.slice(0, dot1));
    const claims = decodeSegment(token.slice(dot1 + 1, dot2));
    if (!header || !claims) throw unauthenticated('jwt-malformed');

    // The issuer is chosen by the (not yet verified) `iss`, among configured issuers only.
    const issuer = typeof claims.iss === 'string' ? this.issuers.get(claims.iss) : undefined;
    if (!issuer) throw unauthenticated('jwt-unknown-issuer');
    // Before any key lookup: the token must not choose its key, nor its algorithm.
    for (const h of FORBIDDEN_HEADERS) if (Object.hasOwn(header, h)) throw unauthenticated('jwt-forbidden-header');
    const alg = header.alg;
    if (typeof alg !== 'string' || !(issuer.config.algorithms as string[]).includes(alg)) throw unauthenticated('jwt-alg-not-allowed');
    const kid = header.kid;
    if (kid !== undefined && typeof kid !== 'string') throw unauthenticated('jwt-malformed');

    const keys = issuer.keys.cached(alg, kid) ?? (await issuer.keys.load(alg, kid));
    const signature = Buffer.from(token.slice(dot2 + 1), 'base64url');
    const signingInput = token.slice(0, dot2);
    if (!keys.some((key) => signatureValid(alg, key, signingInput, signature))) throw unauthenticated('jwt-bad-signature');

    // Signed by the issuer: now the claims it makes are worth reading.
    return checkClaims(header, claims, issuer.config, this.configs, this.now());
  }
}

function unauthenticated(code: UnauthenticatedCode): Unauthenticated {
  return new Unauthenticated(code, code.replace(/^jwt-/, 'JWT ').replace(/-/g, ' '));
}

/** A claim check failed. */
function invalid(code: UnauthenticatedCode = 'jwt-claim-invalid'): never {
  throw unauthenticated(code);
}

const normalizeTyp = (value: string): string => (value.includes('/') ? value.toLowerCase() : `application/${value.toLowerCase()}`);

/**
 * Every claim rule, in one place (DESIGN §2, §3), and the verified result:
 * `typ` when configured; `iss`, `aud`, `sub`, `exp` present (and `iat` with a maximum
 * age); `iss` exact; `aud` one of the configured audiences; `iat`, `nbf`, `exp` finite
 * numbers; `nbf` not ahead and `exp` not past now (with the clock tolerance); `iat` not
 * ahead of now; with a maximum age, both `now - iat` and `exp - iat` within it; `sub` a
 * non-empty string of at most {@link MAX_SUB_LENGTH} characters; the user id it makes
 * belongs to this issuer (no issuer has a longer prefix it starts with). Throws `Unauthenticated`.
 */
function checkClaims(header: Record<string, unknown>, claims: Record<string, unknown>, cfg: IssuerConfig, issuers: readonly IssuerConfig[], nowMs: number): VerifiedJwt {
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
  if (typeof iat === 'number' && iat > now + tolerance) invalid();
  // JSON numbers like 1e400 parse to Infinity: never a valid (never-expiring) time.
  if (!Number.isFinite(exp) || (iat !== undefined && !Number.isFinite(iat))) invalid();
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub === '' || sub.length > MAX_SUB_LENGTH) invalid('jwt-no-sub');
  if (cfg.maxTokenAgeSeconds !== undefined && exp - (iat as number) > cfg.maxTokenAgeSeconds) invalid('jwt-too-old');
  const userId = cfg.userIdPrefix + sub;
  // A user id belongs to the issuer with the longest prefix it starts with (DESIGN §2):
  // with issuers "" and "partner_", the first cannot sign in partner_alice.
  if (userIdOwner(issuers, userId) !== cfg) invalid('jwt-foreign-user-id');

  const email = claims[cfg.emailClaim];
  const groups = claims[cfg.groupsClaim];
  const hasEmail = typeof email === 'string' && email !== '';
  const result: VerifiedJwt = { issuer: cfg.issuer, sub, userId, emailVerified: hasEmail && (claims.email_verified === true || cfg.trustEmail), claims, exp };
  if (hasEmail) result.email = email;
  // All or nothing: dropping some groups could turn a "not in group" condition into an allow.
  if (Array.isArray(groups) && groups.every((g) => typeof g === 'string')) result.groups = [...(groups as string[])];
  // Results are shared through caches: nobody may change them.
  return deepFreeze(result);
}

/** Claims that must be present. */
const PRESENT = ['iss', 'aud', 'sub', 'exp'] as const;
const PRESENT_WITH_AGE = ['iss', 'aud', 'iat', 'sub', 'exp'] as const;

/**
 * A base64url JSON object segment in well-formed UTF-8, or undefined. The characters
 * were checked by `COMPACT_JWS`.
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

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

import { ConfigError } from '../errors';

/** JWS algorithms gatehouse accepts: asymmetric only (no HS*, no `none`). */
export const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
/** One of {@link ASYMMETRIC_ALGS}. */
export type JwsAlg = (typeof ASYMMETRIC_ALGS)[number];

/** A JSON Web Key as configured or fetched: only the members gatehouse looks at are typed. */
export interface JwkLike {
  kty?: string;
  kid?: string;
  alg?: string;
  use?: string;
  key_ops?: string[];
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
  d?: string;
  [k: string]: unknown;
}

/** A trusted issuer, normalised: every default filled in. */
export interface IssuerConfig {
  /** Exact `iss` value; tokens are matched to their issuer by string equality. */
  issuer: string;
  /** Accepted `aud` values (a token needs one of them). */
  audience: string[];
  /** Remote key set (https, or http on a loopback host). Exactly one of `jwksUri`/`jwks`. */
  jwksUri?: string;
  /** Inline key set, validated at parse time. */
  jwks?: { keys: JwkLike[] };
  /** Allowed JWS algorithms. Default: the algorithms of the inline keys, else `["RS256"]`. */
  algorithms: JwsAlg[];
  /** Required `typ` header (compared as a media type, e.g. `at+jwt`). */
  typ?: string;
  /** Prepended to `sub` to make the user id. Default `""`. */
  userIdPrefix: string;
  /** Claim holding the email. Default `email`. */
  emailClaim: string;
  /** Claim holding the groups. Default `groups`. */
  groupsClaim: string;
  /** Allowed clock skew for `exp`/`nbf`/`iat`, seconds. Default 30. */
  clockToleranceSeconds: number;
  /** When set, `iat` is required and both `now - iat` and `exp - iat` are bounded by it. */
  maxTokenAgeSeconds?: number;
  /** The issuer vouches for emails even without `email_verified`. Default false. */
  trustEmail: boolean;
}

const FIELDS = new Set(['issuer', 'audience', 'jwksUri', 'jwks', 'algorithms', 'typ', 'userIdPrefix', 'emailClaim', 'groupsClaim', 'clockToleranceSeconds', 'maxTokenAgeSeconds', 'trustEmail']);
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const RSA_ALGS: JwsAlg[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC_ALG_BY_CRV: Record<string, JwsAlg> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };
const OKP_SIGNING_CURVES = new Set(['Ed25519', 'Ed448']);
const MIN_RSA_BITS = 2048;
const B64URL = /^[A-Za-z0-9_-]+$/;

function isAllowedAlg(a: unknown): a is JwsAlg {
  return (ASYMMETRIC_ALGS as readonly unknown[]).includes(a);
}

/** Loopback hosts, as `URL.hostname` spells them (IPv4 is already normalised to dotted quads). */
function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Big-endian unsigned integer bytes of a base64url member, leading zeros stripped. */
function uintBytes(s: string): Uint8Array {
  const bytes = Buffer.from(s, 'base64url');
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

function bitLength(bytes: Uint8Array): number {
  if (bytes.length === 0) return 0;
  return (bytes.length - 1) * 8 + (32 - Math.clz32(bytes[0]!));
}

/** The JWS algorithms a key's type and curve can serve (not yet narrowed by its `alg`). */
function algsForKeyType(key: JwkLike): JwsAlg[] {
  if (key.kty === 'RSA') return RSA_ALGS;
  if (key.kty === 'EC') {
    const alg = typeof key.crv === 'string' ? EC_ALG_BY_CRV[key.crv] : undefined;
    return alg ? [alg] : [];
  }
  if (key.kty === 'OKP' && typeof key.crv === 'string' && OKP_SIGNING_CURVES.has(key.crv)) return ['EdDSA'];
  return [];
}

/** The algorithm a key stands for when no allow-list is configured: its `alg`, else the natural one for its type. */
function defaultAlgFor(key: JwkLike): JwsAlg | undefined {
  if (isAllowedAlg(key.alg)) return key.alg;
  return algsForKeyType(key)[0];
}

/** Problems with the key material itself, independent of any allow-list. */
function materialProblem(key: JwkLike): string | undefined {
  if (key.kty === 'RSA') {
    if (typeof key.n !== 'string' || !B64URL.test(key.n) || typeof key.e !== 'string' || !B64URL.test(key.e)) return 'RSA key needs base64url "n" and "e"';
    const bits = bitLength(uintBytes(key.n));
    if (bits < MIN_RSA_BITS) return `RSA modulus of ${bits} bits is under ${MIN_RSA_BITS}`;
    const e = uintBytes(key.e);
    // e = 1 makes every "signature" equal to its padded message; an even e is not an RSA key.
    if (e.length === 0 || (e.length === 1 && e[0]! < 3) || (e[e.length - 1]! & 1) === 0) return 'RSA public exponent must be odd and at least 3';
    return undefined;
  }
  if (key.kty === 'EC') {
    if (typeof key.crv !== 'string' || !EC_ALG_BY_CRV[key.crv]) return `EC curve ${JSON.stringify(key.crv)} is not supported (P-256, P-384, P-521)`;
    if (typeof key.x !== 'string' || !B64URL.test(key.x) || typeof key.y !== 'string' || !B64URL.test(key.y)) return 'EC key needs base64url "x" and "y"';
    return undefined;
  }
  // OKP
  if (typeof key.crv !== 'string' || !OKP_SIGNING_CURVES.has(key.crv)) return `OKP curve ${JSON.stringify(key.crv)} is not a signature curve (Ed25519, Ed448)`;
  if (typeof key.x !== 'string' || !B64URL.test(key.x)) return 'OKP key needs base64url "x"';
  return undefined;
}

/**
 * Checks that one JWK is a public signature-verification key usable with at least one
 * of `algorithms`; returns what is wrong with it, or undefined when it is fine.
 * Refused: symmetric (`oct`) and unknown key types, private key material, keys for
 * encryption (`use` other than `sig`, `key_ops` without `verify`), RSA moduli under
 * 2048 bits or degenerate exponents, non-signature curves, and an `alg` that does not
 * fit the key or is not in `algorithms`.
 * Inline key sets treat a problem as fatal (cold start); fetched sets drop the key.
 */
export function keyProblem(key: JwkLike, algorithms: readonly string[]): string | undefined {
  if (!key || typeof key !== 'object' || Array.isArray(key)) return 'not an object';
  if (key.kty === 'oct') return 'symmetric (oct) keys are not allowed';
  if (key.kty !== 'RSA' && key.kty !== 'EC' && key.kty !== 'OKP') return `unsupported kty ${JSON.stringify(key.kty)}`;
  if (PRIVATE_MEMBERS.some((m) => key[m] !== undefined)) return 'private key material must not be configured';
  if (key.use !== undefined && key.use !== 'sig') return `use ${JSON.stringify(key.use)} is not for signatures`;
  if (key.key_ops !== undefined && (!Array.isArray(key.key_ops) || !key.key_ops.includes('verify'))) return 'key_ops does not include verify';
  if (key.kid !== undefined && typeof key.kid !== 'string') return 'kid must be a string';
  const material = materialProblem(key);
  if (material) return material;
  const fits = algsForKeyType(key);
  if (key.alg !== undefined) {
    if (!isAllowedAlg(key.alg)) return `alg ${JSON.stringify(key.alg)} is not an allowed algorithm (asymmetric JWS algorithms only)`;
    if (!fits.includes(key.alg)) return `alg ${JSON.stringify(key.alg)} does not fit a ${key.kty} key`;
    if (!algorithms.includes(key.alg)) return `alg ${JSON.stringify(key.alg)} is not in the issuer's algorithms`;
    return undefined;
  }
  if (!fits.some((a) => algorithms.includes(a))) return `no algorithm in the issuer's algorithms fits this ${key.kty} key`;
  return undefined;
}

function parseAlgorithms(r: Record<string, unknown>, at: string): JwsAlg[] | undefined {
  if (r.algorithms === undefined) return undefined;
  if (!Array.isArray(r.algorithms) || r.algorithms.length === 0) throw new ConfigError(`${at}.algorithms: a non-empty array is required`);
  for (const a of r.algorithms) {
    if (!isAllowedAlg(a)) throw new ConfigError(`${at}.algorithms: ${JSON.stringify(a)} is not allowed (asymmetric JWS algorithms only: ${ASYMMETRIC_ALGS.join(', ')})`);
  }
  return [...new Set(r.algorithms as JwsAlg[])];
}

function parseJwksUri(value: unknown, at: string): string {
  if (typeof value !== 'string') throw new ConfigError(`${at}.jwksUri: must be a URL string`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${at}.jwksUri: not a valid URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw new ConfigError(`${at}.jwksUri: must be https (http only for loopback)`);
  }
  if (url.username || url.password) throw new ConfigError(`${at}.jwksUri: must not carry credentials`);
  return url.toString();
}

function parseJwks(value: unknown, explicitAlgs: JwsAlg[] | undefined, at: string): { jwks: { keys: JwkLike[] }; algorithms: JwsAlg[] } {
  const set = value as { keys?: unknown } | null;
  if (!set || typeof set !== 'object' || Array.isArray(set) || !Array.isArray(set.keys) || set.keys.length === 0) {
    throw new ConfigError(`${at}.jwks: a key set { "keys": [...] } with at least one key is required`);
  }
  const keys = set.keys as JwkLike[];
  // Without an explicit allow-list the keys define it, so each key is first checked
  // against every asymmetric algorithm, then the list is what the keys stand for.
  const algorithms = explicitAlgs ?? [...new Set(keys.map((k) => (k && typeof k === 'object' ? defaultAlgFor(k) : undefined)).filter((a): a is JwsAlg => a !== undefined))];
  keys.forEach((k, j) => {
    const problem = keyProblem(k, explicitAlgs ?? ASYMMETRIC_ALGS);
    if (problem) throw new ConfigError(`${at}.jwks.keys[${j}]: ${problem}`);
  });
  return { jwks: { keys }, algorithms };
}

function parseOne(raw: unknown, i: number): IssuerConfig {
  const at = `GATEHOUSE_ISSUERS[${i}]`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${at}: must be an object`);
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!FIELDS.has(k)) throw new ConfigError(`${at}.${k}: unknown field`);

  if (typeof r.issuer !== 'string' || r.issuer.trim() === '' || r.issuer.length > 512) throw new ConfigError(`${at}.issuer: a non-empty string is required`);
  // `iss` is compared exactly: stray whitespace would make the issuer unreachable.
  if (r.issuer.trim() !== r.issuer) throw new ConfigError(`${at}.issuer: must not start or end with whitespace`);

  let audience: string[];
  if (typeof r.audience === 'string' && r.audience !== '') audience = [r.audience];
  else if (Array.isArray(r.audience) && r.audience.length > 0 && r.audience.every((a) => typeof a === 'string' && a !== '')) audience = [...new Set(r.audience as string[])];
  else throw new ConfigError(`${at}.audience: a non-empty string or a non-empty array of non-empty strings is required`);

  const explicitAlgs = parseAlgorithms(r, at);
  const hasUri = r.jwksUri !== undefined;
  const hasJwks = r.jwks !== undefined;
  if (hasUri === hasJwks) throw new ConfigError(`${at}.jwksUri: exactly one of jwksUri and jwks is required`);
  let jwksUri: string | undefined;
  let jwks: { keys: JwkLike[] } | undefined;
  let algorithms: JwsAlg[];
  if (hasUri) {
    jwksUri = parseJwksUri(r.jwksUri, at);
    // The remote keys are unknown at cold start (no I/O here), so RS256 is the default.
    algorithms = explicitAlgs ?? ['RS256'];
  } else {
    ({ jwks, algorithms } = parseJwks(r.jwks, explicitAlgs, at));
  }

  const optString = (k: string, dflt: string | undefined, allowEmpty = false): string | undefined => {
    const v = r[k];
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || (!allowEmpty && v === '') || v.length > 256) throw new ConfigError(`${at}.${k}: must be a ${allowEmpty ? '' : 'non-empty '}string of at most 256 characters`);
    return v;
  };
  const typ = optString('typ', undefined);
  const userIdPrefix = optString('userIdPrefix', '', true)!;
  const emailClaim = optString('emailClaim', 'email')!;
  const groupsClaim = optString('groupsClaim', 'groups')!;

  const tol = r.clockToleranceSeconds ?? 30;
  if (typeof tol !== 'number' || !Number.isInteger(tol) || tol < 0 || tol > 300) throw new ConfigError(`${at}.clockToleranceSeconds: an integer 0..300 is required`);
  const maxAge = r.maxTokenAgeSeconds;
  if (maxAge !== undefined && (typeof maxAge !== 'number' || !Number.isSafeInteger(maxAge) || maxAge <= 0)) throw new ConfigError(`${at}.maxTokenAgeSeconds: a positive integer is required`);
  if (r.trustEmail !== undefined && typeof r.trustEmail !== 'boolean') throw new ConfigError(`${at}.trustEmail: must be a boolean`);

  return {
    issuer: r.issuer,
    audience,
    ...(jwksUri !== undefined ? { jwksUri } : {}),
    ...(jwks !== undefined ? { jwks } : {}),
    algorithms,
    ...(typ !== undefined ? { typ } : {}),
    userIdPrefix,
    emailClaim,
    groupsClaim,
    clockToleranceSeconds: tol,
    ...(maxAge !== undefined ? { maxTokenAgeSeconds: maxAge as number } : {}),
    trustEmail: r.trustEmail === true,
  };
}

/**
 * Parses `GATEHOUSE_ISSUERS` (a JSON array of issuer entries; unset or blank means
 * none) into normalised {@link IssuerConfig}s. Anything wrong fails here, at cold
 * start, with a `ConfigError` whose message names the field
 * (`GATEHOUSE_ISSUERS[1].jwksUri: …`): never a silent fallback.
 */
export function parseIssuers(raw: string | undefined): IssuerConfig[] {
  if (raw === undefined || raw.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError('GATEHOUSE_ISSUERS: not valid JSON');
  }
  if (!Array.isArray(parsed)) throw new ConfigError('GATEHOUSE_ISSUERS: must be a JSON array');
  const out = parsed.map(parseOne);
  const seen = new Set<string>();
  const prefixes = new Map<string, number>();
  out.forEach((c, i) => {
    if (seen.has(c.issuer)) throw new ConfigError(`GATEHOUSE_ISSUERS[${i}].issuer: duplicate issuer ${JSON.stringify(c.issuer)}`);
    seen.add(c.issuer);
    // Two issuers with one prefix would name the same users: either could sign in the other's.
    const first = prefixes.get(c.userIdPrefix);
    if (first !== undefined) {
      throw new ConfigError(`GATEHOUSE_ISSUERS[${i}].userIdPrefix: ${JSON.stringify(c.userIdPrefix)} is already the prefix of GATEHOUSE_ISSUERS[${first}]; two issuers must never name the same user, give each its own prefix`);
    }
    prefixes.set(c.userIdPrefix, i);
  });
  return out;
}

/**
 * The issuer a user id belongs to: the one with the longest `userIdPrefix` the id starts
 * with (undefined when none does). Prefixes are distinct ({@link parseIssuers} refuses
 * repeats), so the owner is unique, and an issuer may sign in a user id only when it is
 * that id's owner: with issuers `""` and `"partner_"`, `partner_alice` belongs to the
 * second, whatever the first's token says. Pure; a handful of issuers, so a scan.
 */
export function userIdOwner<T extends Pick<IssuerConfig, 'userIdPrefix'>>(issuers: readonly T[], userId: string): T | undefined {
  let owner: T | undefined;
  for (const c of issuers) {
    if (userId.startsWith(c.userIdPrefix) && (owner === undefined || c.userIdPrefix.length > owner.userIdPrefix.length)) owner = c;
  }
  return owner;
}

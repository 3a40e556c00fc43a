import { ConfigError } from '../errors';

/** JWS algorithms gatehouse accepts: asymmetric only (no HS*, no `none`). */
export const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type JwsAlg = (typeof ASYMMETRIC_ALGS)[number];

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

/** A trusted issuer, normalised (defaults filled in). */
export interface IssuerConfig {
  issuer: string;
  audience: string[];
  jwksUri?: string;
  jwks?: { keys: JwkLike[] };
  algorithms: JwsAlg[];
  typ?: string;
  userIdPrefix: string;
  emailClaim: string;
  groupsClaim: string;
  clockToleranceSeconds: number;
  maxTokenAgeSeconds?: number;
  /** The issuer vouches for emails even without `email_verified`. */
  trustEmail: boolean;
}

const FIELDS = new Set(['issuer', 'audience', 'jwksUri', 'jwks', 'algorithms', 'typ', 'userIdPrefix', 'emailClaim', 'groupsClaim', 'clockToleranceSeconds', 'maxTokenAgeSeconds', 'trustEmail']);

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

function b64urlBytes(s: unknown): number {
  return typeof s === 'string' ? Math.floor((s.replace(/=+$/, '').length * 3) / 4) : 0;
}

/**
 * Checks one public key for signature use; returns a problem description or undefined.
 * Used for inline key sets (fatal at cold start) and fetched ones (key ignored).
 */
export function keyProblem(key: JwkLike, algorithms: readonly string[]): string | undefined {
  if (!key || typeof key !== 'object') return 'not an object';
  if (key.kty === 'oct') return 'symmetric (oct) keys are not allowed';
  if (key.kty !== 'RSA' && key.kty !== 'EC' && key.kty !== 'OKP') return `unsupported kty ${JSON.stringify(key.kty)}`;
  if (key.d !== undefined || key.p !== undefined) return 'private key material must not be configured';
  if (key.use !== undefined && key.use !== 'sig') return `use ${JSON.stringify(key.use)} is not for signatures`;
  if (key.key_ops !== undefined && (!Array.isArray(key.key_ops) || !key.key_ops.includes('verify'))) return 'key_ops does not include verify';
  if (key.kty === 'RSA') {
    const bits = b64urlBytes(key.n) * 8;
    if (bits < 2048) return `RSA modulus of ${bits} bits is under 2048`;
  }
  if (key.alg !== undefined && !algorithms.includes(key.alg)) return `alg ${JSON.stringify(key.alg)} is not in the issuer's algorithms`;
  return undefined;
}

function parseOne(raw: unknown, i: number): IssuerConfig {
  const at = `GATEHOUSE_ISSUERS[${i}]`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${at}: must be an object`);
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!FIELDS.has(k)) throw new ConfigError(`${at}.${k}: unknown field`);
  if (typeof r.issuer !== 'string' || r.issuer.trim() === '' || r.issuer.length > 512) throw new ConfigError(`${at}.issuer: a non-empty string is required`);
  let audience: string[];
  if (typeof r.audience === 'string' && r.audience !== '') audience = [r.audience];
  else if (Array.isArray(r.audience) && r.audience.length > 0 && r.audience.every((a) => typeof a === 'string' && a !== '')) audience = r.audience as string[];
  else throw new ConfigError(`${at}.audience: a non-empty string or array of strings is required`);

  let algorithms: JwsAlg[] = ['RS256'];
  if (r.algorithms !== undefined) {
    if (!Array.isArray(r.algorithms) || r.algorithms.length === 0) throw new ConfigError(`${at}.algorithms: a non-empty array is required`);
    for (const a of r.algorithms) {
      if (!(ASYMMETRIC_ALGS as readonly unknown[]).includes(a)) throw new ConfigError(`${at}.algorithms: ${JSON.stringify(a)} is not allowed (asymmetric JWS algorithms only)`);
    }
    algorithms = [...new Set(r.algorithms as JwsAlg[])];
  }

  const hasUri = r.jwksUri !== undefined;
  const hasJwks = r.jwks !== undefined;
  if (hasUri === hasJwks) throw new ConfigError(`${at}.jwksUri: exactly one of jwksUri and jwks is required`);
  let jwksUri: string | undefined;
  let jwks: { keys: JwkLike[] } | undefined;
  if (hasUri) {
    if (typeof r.jwksUri !== 'string') throw new ConfigError(`${at}.jwksUri: must be a URL string`);
    let url: URL;
    try {
      url = new URL(r.jwksUri);
    } catch {
      throw new ConfigError(`${at}.jwksUri: not a valid URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
      throw new ConfigError(`${at}.jwksUri: must be https (http only for loopback)`);
    }
    if (url.username || url.password) throw new ConfigError(`${at}.jwksUri: must not carry credentials`);
    jwksUri = url.toString();
  } else {
    const set = r.jwks as { keys?: unknown };
    if (!set || typeof set !== 'object' || !Array.isArray(set.keys) || set.keys.length === 0) throw new ConfigError(`${at}.jwks: a key set { "keys": [...] } with at least one key is required`);
    set.keys.forEach((k, j) => {
      const problem = keyProblem(k as JwkLike, algorithms);
      if (problem) throw new ConfigError(`${at}.jwks.keys[${j}]: ${problem}`);
    });
    jwks = { keys: set.keys as JwkLike[] };
  }

  const optString = (k: string, dflt: string | undefined, allowEmpty = false) => {
    const v = r[k];
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || (!allowEmpty && v === '') || v.length > 256) throw new ConfigError(`${at}.${k}: must be a ${allowEmpty ? '' : 'non-empty '}string`);
    return v;
  };
  const tol = r.clockToleranceSeconds ?? 30;
  if (typeof tol !== 'number' || !Number.isInteger(tol) || tol < 0 || tol > 300) throw new ConfigError(`${at}.clockToleranceSeconds: an integer 0..300 is required`);
  const maxAge = r.maxTokenAgeSeconds;
  if (maxAge !== undefined && (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge <= 0)) throw new ConfigError(`${at}.maxTokenAgeSeconds: a positive integer is required`);
  if (r.trustEmail !== undefined && typeof r.trustEmail !== 'boolean') throw new ConfigError(`${at}.trustEmail: must be a boolean`);

  const typ = optString('typ', undefined);
  return {
    issuer: r.issuer,
    audience,
    ...(jwksUri ? { jwksUri } : {}),
    ...(jwks ? { jwks } : {}),
    algorithms,
    ...(typ ? { typ } : {}),
    userIdPrefix: optString('userIdPrefix', '', true)!,
    emailClaim: optString('emailClaim', 'email')!,
    groupsClaim: optString('groupsClaim', 'groups')!,
    clockToleranceSeconds: tol,
    ...(maxAge !== undefined ? { maxTokenAgeSeconds: maxAge as number } : {}),
    trustEmail: r.trustEmail === true,
  };
}

/**
 * Parses `GATEHOUSE_ISSUERS`. Anything wrong fails here, at cold start, with a
 * ConfigError naming the field: never a silent fallback.
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
  out.forEach((c, i) => {
    if (seen.has(c.issuer)) throw new ConfigError(`GATEHOUSE_ISSUERS[${i}].issuer: duplicate issuer ${JSON.stringify(c.issuer)}`);
    seen.add(c.issuer);
  });
  return out;
}

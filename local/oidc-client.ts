/**
 * What a client of the local issuer needs (`npm run token`), without loading
 * `oidc-provider`: the local grant, client credentials and audience, and the request.
 */
/** The grant a newcomer uses to get a token for a chosen user (local development only). */
export const LOCAL_USER_GRANT = 'urn:gatehouse:params:grant-type:local-user';
export const LOCAL_CLIENT_ID = 'gatehouse-local';
export const LOCAL_CLIENT_SECRET = 'gatehouse-local-secret';
export const LOCAL_AUDIENCE = 'gatehouse';

/** Claims the issuer sets itself: `--claim` cannot give them. */
export const RESERVED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'gatehouse_user', 'cnf', 'auth_time', 'acr', 'amr', 'azp', 'sid', 'authorization_details'];
const CLAIM_NAME_RE = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;
const GROUP_RE = /^[^\s,]{1,128}$/;

/** `--groups a,b --groups c` -> ['a', 'b', 'c']; throws on an empty or odd name. */
export function parseGroups(values: string[]): string[] {
  const out = values.flatMap((v) => v.split(',').map((g) => g.trim()));
  for (const g of out) if (!GROUP_RE.test(g)) throw new Error(`--groups: ${JSON.stringify(g.slice(0, 40))} is not a group name (no spaces or commas, 1..128 characters)`);
  if (out.length > 50) throw new Error('--groups: at most 50 groups');
  return [...new Set(out)];
}

/** `--claim key=value`: the value as JSON when it parses, else the string. */
export function parseClaim(arg: string): Record<string, unknown> {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new Error(`--claim takes key=value, not ${JSON.stringify(arg.slice(0, 40))}`);
  const key = arg.slice(0, eq);
  const raw = arg.slice(eq + 1);
  if (!CLAIM_NAME_RE.test(key)) throw new Error(`--claim: ${JSON.stringify(key.slice(0, 40))} is not a claim name`);
  if (RESERVED_CLAIMS.includes(key)) throw new Error(`--claim: ${key} is set by the issuer`);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // not JSON: the string itself
  }
  return { [key]: value };
}

/** Checks what a token request may carry (the issuer applies the same rules). */
export function checkExtraClaims(claims: Record<string, unknown>): void {
  for (const k of Object.keys(claims)) {
    if (!CLAIM_NAME_RE.test(k)) throw new Error(`claims: ${JSON.stringify(k.slice(0, 40))} is not a claim name`);
    if (RESERVED_CLAIMS.includes(k)) throw new Error(`claims: ${k} is set by the issuer`);
  }
  if (JSON.stringify(claims).length > 4096) throw new Error('claims: at most 4 KiB');
}

/**
 * Where a running local issuer may be, in order: the one asked for, the one the
 * persistent stack recorded in its data directory, and where `npm start` puts it,
 * persistent or in memory (`GATEHOUSE_OIDC_PORT`, else `PORT + 1`).
 */
export function localIssuerCandidates(o: { explicit?: string; fromDataDir?: string; env: Record<string, string | undefined> }): string[] {
  if (o.explicit) return [o.explicit.replace(/\/+$/, '')];
  const port = o.env.GATEHOUSE_OIDC_PORT || String(Number(o.env.PORT || 3000) + 1);
  return [...new Set([...(o.fromDataDir ? [o.fromDataDir.replace(/\/+$/, '')] : []), `http://127.0.0.1:${port}`])];
}

/** The first candidate whose discovery document names it as issuer; undefined when none answers. */
export async function findLocalIssuer(candidates: string[]): Promise<{ issuer: string; tokenUrl: string } | undefined> {
  for (const issuer of candidates) {
    try {
      const res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(3000), redirect: 'error' });
      if (!res.ok) continue;
      const doc = (await res.json()) as { issuer?: unknown; token_endpoint?: unknown };
      if (doc.issuer === issuer && typeof doc.token_endpoint === 'string') return { issuer, tokenUrl: doc.token_endpoint };
    } catch {
      // nothing there (or not an issuer): try the next one
    }
  }
  return undefined;
}

/** Asks a running local issuer for a token for `user` (what `npm run token` does). */
export async function fetchLocalToken(tokenUrl: string, user: string, email?: string, extra: { groups?: string[]; claims?: Record<string, unknown> } = {}): Promise<string> {
  const body = new URLSearchParams({
    grant_type: LOCAL_USER_GRANT, client_id: LOCAL_CLIENT_ID, client_secret: LOCAL_CLIENT_SECRET, user,
    ...(email ? { email } : {}),
    ...(extra.groups ? { groups: extra.groups.join(',') } : {}),
    ...(extra.claims ? { claims: JSON.stringify(extra.claims) } : {}),
  });
  const res = await fetch(tokenUrl, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !json.access_token) throw new Error(`token request failed: ${res.status} ${json.error ?? ''} ${json.error_description ?? ''}`.trim());
  return json.access_token;
}

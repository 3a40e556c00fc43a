/**
 * Extracting the one credential from request headers. Every input here is hostile:
 * anything but exactly one `Bearer <credential>` yields undefined (-> 401).
 */
const MAX_CREDENTIAL_LENGTH = 8192;
// RFC 6750 b64token characters, plus nothing else.
const CREDENTIAL_RE = /^[A-Za-z0-9\-._~+/]+=*$/;
/** `Bearer <credential>`, what `parseBearer` accepts (kept as the reference the scanner is tested against). */
export const BEARER_RE = /^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*) *$/;
const SCHEME_UPPER = [66, 69, 65, 82, 69, 82]; // B E A R E R
const SPACE = 32;
const EQUALS = 61;
const B64TOKEN = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/') B64TOKEN[c.charCodeAt(0)] = 1;
const isB64TokenChar = (c: number) => c < 128 && B64TOKEN[c] === 1;

/** Parses one `Authorization` header value: scheme case-insensitive, exactly one credential. */
export function parseBearer(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  if (value.length > MAX_CREDENTIAL_LENGTH + 16) return undefined;
  // The grammar of BEARER_RE, scanned by hand (one pass, no match array): this runs for
  // every request. `bearer-scan` tests hold the two equal on generated inputs.
  const n = value.length;
  if (n < 8) return undefined;
  for (let i = 0; i < 6; i++) {
    const c = value.charCodeAt(i);
    if (c !== SCHEME_UPPER[i] && c !== SCHEME_UPPER[i]! + 32) return undefined;
  }
  let i = 6;
  if (value.charCodeAt(i) !== SPACE) return undefined;
  while (i < n && value.charCodeAt(i) === SPACE) i++;
  const start = i;
  while (i < n && isB64TokenChar(value.charCodeAt(i))) i++;
  if (i === start) return undefined;
  while (i < n && value.charCodeAt(i) === EQUALS) i++;
  const end = i;
  while (i < n && value.charCodeAt(i) === SPACE) i++;
  if (i !== n || end - start > MAX_CREDENTIAL_LENGTH) return undefined;
  return value.slice(start, end);
}

/**
 * Finds the `Authorization` header in any name case. Two or more headers of that
 * name (or a comma-joined value) are refused: exactly one header, one credential.
 */
export function findAuthorization(
  headers: Record<string, string | undefined> | null | undefined,
  multiValueHeaders?: Record<string, string[] | undefined> | null,
): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  let found: string | undefined;
  let count = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() !== 'authorization') continue;
    count++;
    if (typeof value === 'string') found = value;
  }
  if (multiValueHeaders && typeof multiValueHeaders === 'object') {
    for (const [name, values] of Object.entries(multiValueHeaders)) {
      if (name.toLowerCase() === 'authorization' && Array.isArray(values) && values.length > 1) return undefined;
    }
  }
  if (count !== 1 || found === undefined) return undefined;
  // HTTP APIs join repeated headers with commas; a bearer credential never holds one.
  if (found.includes(',')) return undefined;
  return parseBearer(found);
}

/**
 * WebSocket browsers cannot set `Authorization`; the token may travel as an entry of
 * `Sec-WebSocket-Protocol`. Accepted forms: an entry that is itself a credential
 * (`gat_…` or a JWT), or the pair `bearer, <credential>` / entry `bearer.<credential>`.
 * More than one candidate credential is refused.
 */
export function findWebSocketProtocolCredential(
  headers: Record<string, string | undefined> | null | undefined,
): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  let raw: string | undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'sec-websocket-protocol' && typeof value === 'string') {
      if (raw !== undefined) return undefined;
      raw = value;
    }
  }
  if (raw === undefined || raw.length > MAX_CREDENTIAL_LENGTH * 2) return undefined;
  const entries = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const candidates: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (/^bearer$/i.test(e)) continue;
    const dotted = /^bearer\.(.+)$/i.exec(e);
    const c = dotted ? dotted[1]! : e;
    if (c.startsWith('gat_') || /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(c)) candidates.push(c);
  }
  if (candidates.length !== 1) return undefined;
  const c = candidates[0]!;
  return c.length <= MAX_CREDENTIAL_LENGTH && CREDENTIAL_RE.test(c) ? c : undefined;
}

/** A credential starting with `gat_` is a gatehouse token; anything else is tried as a JWT. Never both. */
export function credentialKind(credential: string): 'gatehouse' | 'jwt' {
  return credential.startsWith('gat_') ? 'gatehouse' : 'jwt';
}

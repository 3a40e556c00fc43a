/**
 * Extracting the one credential from request headers. Every input here is hostile:
 * anything but exactly one `Bearer <credential>` yields undefined (-> 401).
 */
const MAX_CREDENTIAL_LENGTH = 8192;
// RFC 6750 b64token characters, plus nothing else.
const CREDENTIAL_RE = /^[A-Za-z0-9\-._~+/]+=*$/;
/** `Bearer <credential>`: the scheme in any case, one or more spaces, one RFC 6750 b64token, optional trailing spaces. */
const BEARER_RE = /^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*) *$/;

/** Parses one `Authorization` header value: scheme case-insensitive, exactly one credential. */
export function parseBearer(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > MAX_CREDENTIAL_LENGTH + 16) return undefined;
  const credential = BEARER_RE.exec(value)?.[1];
  return credential !== undefined && credential.length <= MAX_CREDENTIAL_LENGTH ? credential : undefined;
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

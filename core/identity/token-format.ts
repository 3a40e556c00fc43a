import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * gatehouse token format (DESIGN §3):
 * `gat_` + 16-char base62 id + `_` + 32-char base62 secret + 6-char base62 CRC32
 * (IEEE, as zlib) of everything before the checksum, `gat_` included.
 * Like GitHub's tokens, a scanner can recognise one offline.
 */
export const TOKEN_PREFIX = 'gat_';
export const TOKEN_ID_LENGTH = 16;
export const TOKEN_SECRET_LENGTH = 32;
export const TOKEN_CHECKSUM_LENGTH = 6;
export const TOKEN_LENGTH = TOKEN_PREFIX.length + TOKEN_ID_LENGTH + 1 + TOKEN_SECRET_LENGTH + TOKEN_CHECKSUM_LENGTH;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TOKEN_RE = /^gat_([0-9A-Za-z]{16})_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;
const TOKEN_ID_RE = /^[0-9A-Za-z]{16}$/;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib's `crc32`) of a string's UTF-8 bytes. */
export function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of Buffer.from(text, 'utf8')) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Encodes a non-negative integer in base62, most significant digit first, zero-padded to `width`. */
export function base62(value: number, width: number): string {
  let out = '';
  let v = value;
  while (v > 0) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  if (out.length > width) throw new RangeError('value does not fit');
  return out.padStart(width, '0');
}

/** `length` uniformly random base62 characters (rejection sampling, no modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** True when `id` has the shape of a token id (16 base62 characters). */
export function isTokenId(id: unknown): id is string {
  return typeof id === 'string' && TOKEN_ID_RE.test(id);
}

/** Assembles a token string from its id and secret, adding the checksum. */
export function formatToken(id: string, secret: string): string {
  const body = `${TOKEN_PREFIX}${id}_${secret}`;
  return body + base62(crc32(body), TOKEN_CHECKSUM_LENGTH);
}

/** Makes a new token: random id (unless given, for rotation) and secret. */
export function generateToken(id: string = randomBase62(TOKEN_ID_LENGTH)): { id: string; secret: string; token: string } {
  const secret = randomBase62(TOKEN_SECRET_LENGTH);
  return { id, secret, token: formatToken(id, secret) };
}

/**
 * Parses a credential that claims to be a gatehouse token. Returns undefined when the
 * shape or checksum is wrong: such a token is rejected without touching DynamoDB.
 */
export function parseToken(credential: string): { id: string; secret: string } | undefined {
  if (credential.length !== TOKEN_LENGTH) return undefined;
  const m = TOKEN_RE.exec(credential);
  if (!m) return undefined;
  const body = credential.slice(0, credential.length - TOKEN_CHECKSUM_LENGTH);
  if (base62(crc32(body), TOKEN_CHECKSUM_LENGTH) !== m[3]) return undefined;
  return { id: m[1]!, secret: m[2]! };
}

/** SHA-256 of the secret, hex: the only form of the secret that is stored. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, storedHashHex: string): boolean {
  const presented = createHash('sha256').update(secret, 'utf8').digest();
  if (!/^[0-9a-f]{64}$/.test(storedHashHex)) return false;
  const stored = Buffer.from(storedHashHex, 'hex');
  return timingSafeEqual(presented, stored);
}

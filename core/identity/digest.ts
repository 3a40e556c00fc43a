import * as nodeCrypto from 'node:crypto';

type OneShot = (algorithm: string, data: string, outputEncoding: 'base64url' | 'hex') => string;

/**
 * `crypto.hash` (Node >= 20.12) hashes a string in one native call; older Node falls
 * back to `createHash`.
 */
const oneShot: OneShot =
  typeof (nodeCrypto as { hash?: unknown }).hash === 'function'
    ? ((nodeCrypto as unknown as { hash: OneShot }).hash)
    : (algorithm, data, encoding) => nodeCrypto.createHash(algorithm).update(data, 'utf8').digest(encoding);

/** SHA-256 of a string (UTF-8), base64url: cache keys for credentials, never the credential itself. */
export function sha256Base64url(text: string): string {
  return oneShot('sha256', text, 'base64url');
}

/** FNV-1a (32 bits) of a string's UTF-16 code units: a fast, non-cryptographic hash (dedupe keys, admission filters). */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

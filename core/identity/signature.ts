import { constants, KeyObject, verify } from 'node:crypto';
import type { CryptoKey } from 'jose';
import type { JwsAlg } from '../config/issuers';

/**
 * JWS signature verification with `node:crypto`, synchronously, on keys that jose
 * selected and imported (DESIGN §3). This module owns the one table from a JWS
 * algorithm to the parameters `crypto.verify` needs and to the keys that may serve it.
 *
 * Why not jose's own `compactVerify`: it checks the signature through WebCrypto, an
 * asynchronous hop to a worker thread per token; the mathematics is the same
 * (OpenSSL), and `crypto.verify` does it on this thread with no hop.
 */
interface AlgorithmSpec {
  /** Digest passed to `crypto.verify`; null for EdDSA (the curve fixes it). */
  digest: 'sha256' | 'sha384' | 'sha512' | null;
  /** The WebCrypto algorithm jose imports a key with for this JWS algorithm. */
  webCrypto: 'RSASSA-PKCS1-v1_5' | 'RSA-PSS' | 'ECDSA' | 'EdDSA';
  /** Key types (`KeyObject.asymmetricKeyType`) that can serve it. */
  keyTypes: readonly string[];
  /** ECDSA: the curve the algorithm demands (OpenSSL name) and the raw r||s length. */
  curve?: string;
  signatureBytes?: number;
  /** RSA: PKCS#1 v1.5 or PSS with a salt as long as the digest (RFC 7518 §3.5). */
  padding?: number;
}

const RSA_PKCS1 = constants.RSA_PKCS1_PADDING;
const RSA_PSS = constants.RSA_PKCS1_PSS_PADDING;

/** RFC 7518 §3.1 (and RFC 8037 for EdDSA), asymmetric algorithms only. */
const ALGORITHMS: Readonly<Record<JwsAlg, AlgorithmSpec>> = Object.freeze({
  RS256: { digest: 'sha256', webCrypto: 'RSASSA-PKCS1-v1_5', keyTypes: ['rsa'], padding: RSA_PKCS1 },
  RS384: { digest: 'sha384', webCrypto: 'RSASSA-PKCS1-v1_5', keyTypes: ['rsa'], padding: RSA_PKCS1 },
  RS512: { digest: 'sha512', webCrypto: 'RSASSA-PKCS1-v1_5', keyTypes: ['rsa'], padding: RSA_PKCS1 },
  PS256: { digest: 'sha256', webCrypto: 'RSA-PSS', keyTypes: ['rsa', 'rsa-pss'], padding: RSA_PSS },
  PS384: { digest: 'sha384', webCrypto: 'RSA-PSS', keyTypes: ['rsa', 'rsa-pss'], padding: RSA_PSS },
  PS512: { digest: 'sha512', webCrypto: 'RSA-PSS', keyTypes: ['rsa', 'rsa-pss'], padding: RSA_PSS },
  ES256: { digest: 'sha256', webCrypto: 'ECDSA', keyTypes: ['ec'], curve: 'prime256v1', signatureBytes: 64 },
  ES384: { digest: 'sha384', webCrypto: 'ECDSA', keyTypes: ['ec'], curve: 'secp384r1', signatureBytes: 96 },
  ES512: { digest: 'sha512', webCrypto: 'ECDSA', keyTypes: ['ec'], curve: 'secp521r1', signatureBytes: 132 },
  EdDSA: { digest: null, webCrypto: 'EdDSA', keyTypes: ['ed25519', 'ed448'] },
});

const MIN_RSA_BITS = 2048;

/** A public key that may check signatures of exactly one JWS algorithm. */
export interface VerificationKey {
  readonly alg: JwsAlg;
  readonly key: KeyObject;
}

/**
 * Turns a key jose imported for `alg` into a {@link VerificationKey}, or undefined when
 * the key cannot serve that algorithm: not a public key, wrong type, wrong curve, RSA
 * under 2048 bits, or imported by jose for another algorithm.
 */
export function verificationKey(alg: string, cryptoKey: CryptoKey): VerificationKey | undefined {
  const spec = specOf(alg);
  if (!spec) return undefined;
  // jose binds a key to the WebCrypto algorithm it was imported for; keep that binding.
  const imported = (cryptoKey.algorithm as { name?: string }).name;
  if (imported !== spec.webCrypto && !(spec.webCrypto === 'EdDSA' && (imported === 'Ed25519' || imported === 'Ed448'))) return undefined;
  const hash = (cryptoKey.algorithm as { hash?: { name?: string } }).hash?.name;
  if (hash !== undefined && spec.digest !== null && hash.replace('-', '').toLowerCase() !== spec.digest) return undefined;
  const key = KeyObject.from(cryptoKey);
  return keyFits(spec, key) ? Object.freeze({ alg: alg as JwsAlg, key }) : undefined;
}

function specOf(alg: string): AlgorithmSpec | undefined {
  return Object.hasOwn(ALGORITHMS, alg) ? ALGORITHMS[alg as JwsAlg] : undefined;
}

function keyFits(spec: AlgorithmSpec, key: KeyObject): boolean {
  if (key.type !== 'public' || key.asymmetricKeyType === undefined || !spec.keyTypes.includes(key.asymmetricKeyType)) return false;
  const details = key.asymmetricKeyDetails ?? {};
  if (spec.curve !== undefined && details.namedCurve !== spec.curve) return false;
  if (spec.padding !== undefined && !((details.modulusLength ?? 0) >= MIN_RSA_BITS)) return false;
  return true;
}

/**
 * True when `signature` is a valid signature of `signingInput` (the ASCII
 * `header.payload` of a compact JWS) under `vk`, for the algorithm the token names.
 * The token's algorithm must be the key's: a key is never used for another algorithm.
 * Never throws: malformed signatures (a DER-encoded or wrong-length ECDSA signature,
 * garbage) are simply invalid.
 */
export function signatureValid(alg: string, vk: VerificationKey, signingInput: string, signature: Buffer): boolean {
  if (alg !== vk.alg) return false;
  const spec = ALGORITHMS[vk.alg];
  // JWS ECDSA signatures are raw r||s of a fixed length (RFC 7518 §3.4), never DER.
  if (spec.signatureBytes !== undefined && signature.length !== spec.signatureBytes) return false;
  const data = Buffer.from(signingInput, 'latin1');
  try {
    if (spec.digest === null) return verify(null, data, vk.key, signature);
    if (spec.padding === RSA_PSS) return verify(spec.digest, data, { key: vk.key, padding: RSA_PSS, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
    if (spec.padding === RSA_PKCS1) return verify(spec.digest, data, { key: vk.key, padding: RSA_PKCS1 }, signature);
    return verify(spec.digest, data, { key: vk.key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

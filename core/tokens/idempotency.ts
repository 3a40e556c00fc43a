import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { actorId, type AdminDeps, nowSeconds } from '../admin/deps';
import { Conflict, GatehouseError, InvalidInput, NotFound, StoreError, Unprocessable } from '../errors';
import type { ApiRequest } from '../http/api';
import type { ErrorSpec } from '../http/spec';
import { formatToken, generateToken, secretMatches } from '../identity/token-format';
import type { Principal } from '../rbac/types';
import { IdempotencyRepo, type IdempotencyRecord } from '../store/dynamo/idempotency';
import type { TokenRecord } from '../store/types';

/**
 * Idempotent token creation (`Idempotency-Key` on the three create endpoints).
 *
 * A client that lost the answer to a create retries with the same key and gets the same
 * token, secret included, instead of minting a second one. The secret is never stored
 * in clear: it is sealed (AES-256-GCM) under a key derived (HKDF-SHA256) from the
 * Idempotency-Key and the caller, which only the client holds. The record is found by
 * another value derived from the same key, so the table holds neither the key nor
 * anything that opens the seal without it. The token and the record are written in one
 * transaction, conditional on the record not existing: two racing requests with one key
 * create one token, and the loser answers what the winner wrote.
 */

/** How long a key is remembered (DynamoDB TTL on `expiresAt`, and checked on every read). */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

// Visible ASCII without the comma (API Gateway joins repeated headers with commas, so a
// comma means two keys were sent), 16+ characters: the key is what protects the sealed
// secret, so it must not be guessable. A UUID v4 fits.
const KEY_RE = /^[\x21-\x2b\x2d-\x7e]{16,255}$/;
const SALT = Buffer.from('gatehouse idempotency v1');

/** The header as the API reference describes it. */
export const IDEMPOTENCY_HEADER = {
  name: 'Idempotency-Key',
  description:
    'Optional. A random value (16..255 visible ASCII characters, no comma; a UUID v4 fits) that makes the create safe to retry: the same key with the same body within 24 hours answers the same token, secret included, and mints nothing new.',
  schema: z.string().regex(KEY_RE),
};

/** The errors the header adds to an endpoint. */
export const IDEMPOTENCY_ERRORS: ErrorSpec[] = [
  { status: 400, code: 'invalid-idempotency-key', when: 'the Idempotency-Key is not 16..255 visible ASCII characters without a comma (or was sent twice)' },
  { status: 422, code: 'idempotency-key-reused', when: 'the Idempotency-Key was used in the last 24 hours with another endpoint or body' },
  { status: 409, code: 'idempotency-token-changed', when: 'the token created with this Idempotency-Key was rotated since: its secret can no longer be answered' },
];

/** The Idempotency-Key header of a request (any case), validated; undefined when absent. */
export function idempotencyKey(headers: Record<string, string> | undefined): string | undefined {
  let value: string | undefined;
  for (const [name, v] of Object.entries(headers ?? {})) if (name.toLowerCase() === 'idempotency-key') value = v;
  if (value === undefined) return undefined;
  if (!KEY_RE.test(value)) throw new InvalidInput('invalid-idempotency-key', 'Idempotency-Key must be 16..255 visible ASCII characters without a comma (a UUID v4 fits)');
  return value;
}

/** The record id and the sealing key of one (key, caller). Independent HKDF outputs: one does not reveal the other. */
export function deriveKeys(key: string, caller: string): { lookup: string; sealKey: Buffer } {
  const ikm = Buffer.from(key, 'utf8');
  const derive = (purpose: string) => Buffer.from(hkdfSync('sha256', ikm, SALT, Buffer.from(`${purpose}\0${caller}`, 'utf8'), 32));
  return { lookup: derive('lookup').toString('base64url'), sealKey: derive('seal') };
}

/** JSON with object keys sorted, so the same body in another key order is the same request. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** What makes two requests "the same": method, concrete path and body. */
export function requestFingerprint(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonical(body)}`, 'utf8').digest('base64url');
}

function aad(r: Pick<IdempotencyRecord, 'lookup' | 'tokenId' | 'fingerprint'>): Buffer {
  return Buffer.from(`${r.lookup}\0${r.tokenId}\0${r.fingerprint}`, 'utf8');
}

/** AES-256-GCM; the record's identity is authenticated data, so a sealed secret cannot be moved to another record. */
export function sealSecret(secret: string, sealKey: Buffer, r: Pick<IdempotencyRecord, 'lookup' | 'tokenId' | 'fingerprint'>): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey, iv);
  cipher.setAAD(aad(r));
  const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

/** Opens a sealed secret; undefined when the key or the record does not fit. */
export function openSecret(sealed: string, sealKey: Buffer, r: Pick<IdempotencyRecord, 'lookup' | 'tokenId' | 'fingerprint'>): string | undefined {
  try {
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < 12 + 16 + 1) return undefined;
    const decipher = createDecipheriv('aes-256-gcm', sealKey, raw.subarray(0, 12));
    decipher.setAAD(aad(r));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

export interface Minted {
  record: TokenRecord;
  /** The full token string (secret included). */
  token: string;
  /** True when an earlier request with the same key created it. */
  replayed: boolean;
}

/**
 * The mint-and-store step of a token creation. Without a key: a new token, stored.
 * With one: the token an earlier request with the same key, caller and body created,
 * or a new one stored together with its sealed secret, atomically.
 */
export async function mintToken(
  deps: Pick<AdminDeps, 'store' | 'now'>,
  request: { key: string | undefined; caller: Principal; req: Pick<ApiRequest, 'method' | 'path' | 'body'> },
  build: (id: string, secret: string) => TokenRecord,
): Promise<Minted> {
  const t = generateToken();
  const record = build(t.id, t.secret);
  if (request.key === undefined) {
    await deps.store.tokens.createToken(record);
    return { record, token: t.token, replayed: false };
  }
  const nowS = nowSeconds(deps);
  const repo = new IdempotencyRepo(deps.store.db);
  const { lookup, sealKey } = deriveKeys(request.key, actorId(request.caller));
  const fingerprint = requestFingerprint(request.req.method, request.req.path, request.req.body);

  const earlier = await repo.get(lookup, nowS);
  if (earlier) return replay(deps, earlier, fingerprint, sealKey);

  // Never outlives the token: a replay always finds the token it names.
  const held = { lookup, tokenId: record.id, fingerprint, createdAt: nowS, expiresAt: Math.min(nowS + IDEMPOTENCY_TTL_SECONDS, record.expiresAt) };
  const outcome = await repo.createTokenOnce(record, { ...held, sealed: sealSecret(t.secret, sealKey, held) }, nowS);
  if (outcome === 'created') return { record, token: t.token, replayed: false };
  // Another request with the same key won the race: answer what it created.
  const winner = await repo.get(lookup, nowS);
  if (!winner) throw new StoreError('idempotency-race', 'the Idempotency-Key changed hands meanwhile; retry');
  return replay(deps, winner, fingerprint, sealKey);
}

async function replay(deps: Pick<AdminDeps, 'store'>, earlier: IdempotencyRecord, fingerprint: string, sealKey: Buffer): Promise<Minted> {
  // 422: the key is the client's promise that this is the same request.
  if (earlier.fingerprint !== fingerprint) throw new Unprocessable('idempotency-key-reused', 'this Idempotency-Key was used with another request in the last 24 hours');
  const secret = openSecret(earlier.sealed, sealKey, { ...earlier, fingerprint });
  const record = await deps.store.tokens.getToken(earlier.tokenId);
  if (!record) throw new NotFound();
  if (secret === undefined) throw new GatehouseError('internal-error', 'internal error', 500);
  if (!secretMatches(secret, record.secretHash)) throw new Conflict('idempotency-token-changed', 'the token created with this Idempotency-Key was rotated since; its secret is no longer available');
  return { record, token: formatToken(record.id, secret), replayed: true };
}

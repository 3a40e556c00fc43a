import { createLocalJWKSet, type CryptoKey, type JWTVerifyGetKey } from 'jose';
import type { IssuerConfig } from '../config/issuers';
import { KeySourceError, Unauthenticated } from '../errors';
import { RemoteJwks, type RemoteJwksOptions } from './jwks';
import { verificationKey, type VerificationKey } from './signature';

/** When several keys match a kid-less token, at most this many are tried. */
const MAX_KEY_CANDIDATES = 4;
/** Keys remembered per issuer: `kid`s come from tokens, so the map is bounded. */
const MAX_REMEMBERED = 64;

/**
 * The verification keys of one issuer, by `(alg, kid)`. jose reads the key set
 * (inline, or remote through {@link RemoteJwks}), selects the keys a token header names
 * (alg, kid, kty, use, key_ops, curve) and imports them; this class turns them into
 * `node:crypto` keys once and remembers them for as long as the key set they came from
 * is the one in use (an inline set never changes; a remote set changes with every
 * fetch), so later tokens of the same key are checked without asking jose again.
 *
 * Cache: one owner (this class), at most {@link MAX_REMEMBERED} entries per issuer, each
 * valid only while its key set is the current one (remote sets: 10 minutes).
 */
export class IssuerKeys {
  private readonly getKey: JWTVerifyGetKey;
  private readonly remoteSet?: RemoteJwks;
  private readonly remembered = new Map<string, { generation: object; keys: readonly VerificationKey[] }>();

  constructor(config: IssuerConfig, remoteOptions: RemoteJwksOptions = {}) {
    if (config.jwks) {
      this.getKey = createLocalJWKSet(config.jwks as never);
    } else {
      this.remoteSet = new RemoteJwks(config, remoteOptions);
      this.getKey = this.remoteSet.getKey;
    }
  }

  /** The remote key source, when the issuer has one (tests and metrics). */
  get remote(): RemoteJwks | undefined {
    return this.remoteSet;
  }

  /** The key set in use now (an inline set: this object), or undefined when a remote set is stale or not loaded. */
  private generation(): object | undefined {
    return this.remoteSet ? this.remoteSet.generation() : this;
  }

  /** Keys for `(alg, kid)` remembered under the key set in use now, or undefined. */
  cached(alg: string, kid: string | undefined): readonly VerificationKey[] | undefined {
    const entry = this.remembered.get(slot(alg, kid));
    const generation = this.generation();
    return entry !== undefined && generation !== undefined && entry.generation === generation ? entry.keys : undefined;
  }

  /**
   * Asks jose for the keys of `(alg, kid)` (loading or refreshing a remote set as
   * needed) and remembers them. Throws `Unauthenticated` `jwt-unknown-key` when none
   * fits, `KeySourceError` when the key set cannot be had (fail closed).
   */
  async load(alg: string, kid: string | undefined): Promise<readonly VerificationKey[]> {
    const header = kid === undefined ? { alg } : { alg, kid };
    const before = this.generation();
    let cryptoKeys: CryptoKey[];
    try {
      cryptoKeys = [(await this.getKey(header, { payload: '', signature: '' })) as CryptoKey];
    } catch (err) {
      if (err instanceof KeySourceError) throw err;
      cryptoKeys = await candidates(err);
    }
    const keys = cryptoKeys.map((k) => verificationKey(alg, k)).filter((k): k is VerificationKey => k !== undefined);
    if (keys.length === 0) throw new Unauthenticated('jwt-unknown-key', 'JWT unknown key');
    // Remembered only when the set was the same fresh one before and after: a refresh in
    // between (a key rotation) must never attach keys of the old set to the new one.
    if (before !== undefined && this.generation() === before) {
      if (this.remembered.size >= MAX_REMEMBERED) this.remembered.clear();
      this.remembered.set(slot(alg, kid), { generation: before, keys });
    }
    return keys;
  }
}

function slot(alg: string, kid: string | undefined): string {
  return kid === undefined ? `${alg}\u0000` : `${alg}\u0000#${kid}`;
}

/**
 * jose's answer when several keys match a kid-less token: an error that iterates the
 * candidates (its documented opt-in). A bounded number are taken; any other error
 * means no key fits.
 */
async function candidates(err: unknown): Promise<CryptoKey[]> {
  if ((err as { code?: unknown })?.code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS' || !(Symbol.asyncIterator in (err as object))) {
    throw new Unauthenticated('jwt-unknown-key', 'JWT unknown key');
  }
  const out: CryptoKey[] = [];
  for await (const key of err as AsyncIterable<CryptoKey>) {
    out.push(key);
    if (out.length >= MAX_KEY_CANDIDATES) break;
  }
  return out;
}

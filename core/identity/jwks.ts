import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import { keyProblem, type IssuerConfig, type JwkLike } from '../config/issuers';
import { KeySourceError } from '../errors';

/** API Gateway's own cap for the JWKS of its JWT authorizers; larger answers are refused. */
export const MAX_JWKS_BYTES = 150 * 1024;

/** Knobs of a {@link RemoteJwks}; every one has a production default. */
export interface RemoteJwksOptions {
  /** Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** Clock in milliseconds. Default `Date.now`. */
  now?: () => number;
  /** Whole request, body included. Default 1500 ms. */
  timeoutMs?: number;
  /** How long a fetched key set is used before it is fetched again. Default 10 minutes. */
  maxAgeMs?: number;
  /** Least time between a fetch and one caused by an unknown `kid`: kid floods cause no fetch floods. Default 30 s. */
  cooldownMs?: number;
  /** After a failed fetch, requests needing keys fail fast (no new fetch) for this long. Default 5 s. */
  failureBackoffMs?: number;
}

interface LoadedSet {
  getKey: JWTVerifyGetKey;
  fetchedAtMs: number;
}

const isNoMatch = (err: unknown) => (err as { code?: unknown })?.code === 'ERR_JWKS_NO_MATCHING_KEY';

/**
 * An issuer's remote key set (its `jwksUri`), for jose's `compactVerify`.
 *
 * Fetching: a timeout covering the body, `redirect: "manual"` (a 3xx is refused, never
 * followed), only a 200 whose body is a JSON `{ "keys": [...] }` of at most 150 KB
 * (counted while streaming, not taken from Content-Length). Unusable keys in the answer
 * (symmetric, encryption, short RSA, private, not fitting the allow-list) are dropped.
 *
 * Caching: the set is used for `maxAgeMs`; an unknown `kid` refetches at most once per
 * `cooldownMs` (counted from the last attempt, failed or not), and concurrent callers
 * share one in-flight fetch. A failure is remembered for `failureBackoffMs`, so a dead
 * endpoint is not hammered. Failures throw `KeySourceError` (fail closed); a stale set
 * whose refresh fails is not used (like jose's own remote set).
 *
 * Construction does no I/O.
 */
export class RemoteJwks {
  private loaded?: LoadedSet;
  private lastAttemptMs = -Infinity;
  private lastFailure?: KeySourceError;
  private inflight?: Promise<LoadedSet>;
  private readonly uri: string;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly maxAgeMs: number;
  private readonly cooldownMs: number;
  private readonly failureBackoffMs: number;
  /** Number of requests sent to the endpoint (observability and tests). */
  fetches = 0;

  constructor(
    private readonly issuer: Pick<IssuerConfig, 'issuer' | 'jwksUri' | 'algorithms'>,
    options: RemoteJwksOptions = {},
  ) {
    if (!issuer.jwksUri) throw new TypeError('RemoteJwks needs a jwksUri');
    this.uri = issuer.jwksUri;
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? 1500;
    this.maxAgeMs = options.maxAgeMs ?? 10 * 60_000;
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.failureBackoffMs = options.failureBackoffMs ?? 5_000;
  }

  /**
   * The key set in use while it is fresh, as an opaque object whose identity changes
   * with every fetch; undefined when none is loaded or it is stale. Lets a caller
   * remember which key a `(alg, kid)` resolved to for exactly as long as this set is the
   * one `getKey` would use.
   */
  generation(): object | undefined {
    const set = this.loaded;
    return set && this.now() - set.fetchedAtMs < this.maxAgeMs ? set : undefined;
  }

  /**
   * The jose key getter: loads the set on first use or when stale, and on an unknown
   * `kid` refetches (at most once per cooldown) before giving up with jose's
   * `ERR_JWKS_NO_MATCHING_KEY`. Throws `KeySourceError` when the set cannot be had.
   */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    let set = this.loaded;
    if (!set || this.now() - set.fetchedAtMs >= this.maxAgeMs) set = await this.refresh();
    try {
      return await set.getKey(header, token);
    } catch (err) {
      if (!isNoMatch(err)) throw err;
      // A rotation may be under way: wait for a fetch that is already running, else
      // start one only once the cooldown since the last attempt has passed.
      if (this.inflight) set = await this.inflight;
      else if (this.now() - this.lastAttemptMs >= this.cooldownMs) set = await this.refresh();
      else throw err;
    }
    return set.getKey(header, token);
  };

  private refresh(): Promise<LoadedSet> {
    if (this.inflight) return this.inflight;
    if (this.lastFailure && this.now() - this.lastAttemptMs < this.failureBackoffMs) {
      const { code, message } = this.lastFailure;
      return Promise.reject(new KeySourceError(code, `${message} (not retried until the back-off passes)`));
    }
    this.lastAttemptMs = this.now();
    const p = this.load().then(
      (set) => {
        this.loaded = set;
        this.lastFailure = undefined;
        return set;
      },
      (err: unknown) => {
        this.lastFailure = err instanceof KeySourceError ? err : new KeySourceError('jwks-unreachable', `JWKS for ${this.issuer.issuer} failed`);
        throw this.lastFailure;
      },
    );
    this.inflight = p.finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load(): Promise<LoadedSet> {
    const who = `JWKS for ${this.issuer.issuer}`;
    // One deadline for the whole exchange, retry included.
    const signal = AbortSignal.timeout(this.timeoutMs);
    let res: Response | undefined;
    for (let attempt = 1; !res; attempt++) {
      this.fetches++;
      try {
        res = await this.fetchFn(this.uri, { method: 'GET', redirect: 'manual', signal, headers: { accept: 'application/json' } });
      } catch (err) {
        // A kept-alive socket the server closed while the Lambda was frozen fails at once;
        // one immediate retry on a fresh connection covers it. Timeouts are not retried.
        const error = transportError(err, who);
        if (error.code !== 'jwks-unreachable' || attempt >= 2 || signal.aborted) throw error;
      }
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      const hint = res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : '';
      throw new KeySourceError('jwks-http-status', `${who} answered ${res.status}${hint}`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > MAX_JWKS_BYTES) {
      await res.body?.cancel().catch(() => {});
      throw new KeySourceError('jwks-too-large', `${who} is over ${MAX_JWKS_BYTES} bytes`);
    }
    const text = await readCapped(res, MAX_JWKS_BYTES, who);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new KeySourceError('jwks-invalid', `${who} is not JSON`);
    }
    if (!body || typeof body !== 'object' || Array.isArray(body) || !Array.isArray((body as { keys?: unknown }).keys)) {
      throw new KeySourceError('jwks-invalid', `${who} is not a key set ({"keys": [...]})`);
    }
    const keys = (body as { keys: unknown[] }).keys.filter((k) => keyProblem(k as JwkLike, this.issuer.algorithms) === undefined);
    return { getKey: createLocalJWKSet({ keys: keys as never[] }), fetchedAtMs: this.now() };
  }
}

function transportError(err: unknown, who: string): KeySourceError {
  const name = (err as Error)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return new KeySourceError('jwks-timeout', `${who} timed out`);
  return new KeySourceError('jwks-unreachable', `${who} failed: ${name ?? 'error'}`);
}

/** Reads the body, cancelling it as soon as it passes `cap` bytes (Content-Length is not trusted). */
async function readCapped(res: Response, cap: number, who: string): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let r: Awaited<ReturnType<typeof reader.read>>;
    try {
      r = await reader.read();
    } catch (err) {
      throw transportError(err, who);
    }
    if (r.done) break;
    size += r.value.byteLength;
    if (size > cap) {
      await reader.cancel().catch(() => {});
      throw new KeySourceError('jwks-too-large', `${who} is over ${cap} bytes`);
    }
    chunks.push(r.value);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new KeySourceError('jwks-invalid', `${who} is not UTF-8`);
  }
}

import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import { keyProblem, type IssuerConfig, type JwkLike } from '../config/issuers';
import { KeySourceError } from '../errors';

/** API Gateway's own cap for the JWKS of its JWT authorizers. */
export const MAX_JWKS_BYTES = 150 * 1024;

export interface RemoteJwksOptions {
  fetch?: typeof fetch;
  now?: () => number;
  timeoutMs?: number;
  /** How long a fetched key set is used before it is fetched again. */
  maxAgeMs?: number;
  /** Least time between two fetches caused by an unknown `kid`: kid floods cause no fetch floods. */
  cooldownMs?: number;
}

/**
 * A remote key set (an issuer's `jwksUri`): fetched with a timeout, no redirects,
 * only a 200 JSON key set of at most 150 KB; cached, refetched on an unknown `kid` at
 * most once per cooldown; concurrent misses share one fetch. Unusable keys in the
 * answer (symmetric, encryption, short RSA) are ignored.
 */
export class RemoteJwks {
  private getter?: JWTVerifyGetKey;
  private fetchedAtMs = -Infinity;
  private inflight?: Promise<void>;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly maxAgeMs: number;
  private readonly cooldownMs: number;
  /** Number of fetches started (observability and tests). */
  fetches = 0;

  constructor(private readonly issuer: IssuerConfig, options: RemoteJwksOptions = {}) {
    if (!issuer.jwksUri) throw new Error('RemoteJwks needs a jwksUri');
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? 1500;
    this.maxAgeMs = options.maxAgeMs ?? 10 * 60_000;
    this.cooldownMs = options.cooldownMs ?? 30_000;
  }

  /** The jose key getter: fetches on first use, refetches on expiry or (once per cooldown) on an unknown kid. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (!this.getter || this.now() - this.fetchedAtMs > this.maxAgeMs) await this.refresh();
    try {
      return await this.getter!(header, token);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
      if (this.now() - this.fetchedAtMs < this.cooldownMs) throw err;
      await this.refresh();
      return this.getter!(header, token);
    }
  };

  private refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load(): Promise<void> {
    this.fetches++;
    // The attempt counts for the cooldown even when it fails: a dead endpoint is not hammered.
    const attemptAt = this.now();
    let res: Response;
    try {
      res = await this.fetchFn(this.issuer.jwksUri!, {
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
        headers: { accept: 'application/json' },
      });
    } catch (err) {
      this.fetchedAtMs = Math.max(this.fetchedAtMs, attemptAt - this.maxAgeMs + this.cooldownMs);
      const name = (err as Error)?.name;
      throw new KeySourceError(name === 'TimeoutError' || name === 'AbortError' ? 'jwks-timeout' : 'jwks-unreachable', `JWKS fetch for ${this.issuer.issuer} failed: ${name}`);
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new KeySourceError('jwks-http-status', `JWKS for ${this.issuer.issuer} answered ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > MAX_JWKS_BYTES) {
      await res.body?.cancel().catch(() => {});
      throw new KeySourceError('jwks-too-large', `JWKS for ${this.issuer.issuer} is over ${MAX_JWKS_BYTES} bytes`);
    }
    const text = await readCapped(res, MAX_JWKS_BYTES, this.issuer.issuer);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new KeySourceError('jwks-invalid', `JWKS for ${this.issuer.issuer} is not JSON`);
    }
    const keys = (body as { keys?: unknown })?.keys;
    if (!Array.isArray(keys)) throw new KeySourceError('jwks-invalid', `JWKS for ${this.issuer.issuer} has no keys array`);
    const usable = keys.filter((k) => keyProblem(k as JwkLike, this.issuer.algorithms) === undefined);
    this.getter = createLocalJWKSet({ keys: usable as never[] });
    this.fetchedAtMs = this.now();
  }
}

async function readCapped(res: Response, cap: number, issuer: string): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let r: Awaited<ReturnType<typeof reader.read>>;
    try {
      r = await reader.read();
    } catch (err) {
      const name = (err as Error)?.name;
      throw new KeySourceError(name === 'TimeoutError' || name === 'AbortError' ? 'jwks-timeout' : 'jwks-unreachable', `JWKS read for ${issuer} failed: ${name}`);
    }
    if (r.done) break;
    size += r.value.byteLength;
    if (size > cap) {
      await reader.cancel().catch(() => {});
      throw new KeySourceError('jwks-too-large', `JWKS for ${issuer} is over ${cap} bytes`);
    }
    chunks.push(r.value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

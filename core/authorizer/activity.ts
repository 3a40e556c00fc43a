import { fnv1a32 } from '../identity/digest';
import type { Logger } from '../log';
import type { AuthorizerStore, TokenRecord } from '../store/types';
import { FailedAttemptLog } from '../tokens/access-log';
import type { DecisionRequest } from './decide';

/** Entries of the write memo: recent telemetry writes per token and window. */
const MAX_REMEMBERED_WRITES = 10_000;

/**
 * A gatehouse token's activity (DESIGN §6): its access log and `lastUsedAt`. Denials are
 * always recorded; failed attempts (bad secret, revoked, expired: the token id is public,
 * so anyone can make them) are counted per (token, reason, source IP, minute) by a
 * `FailedAttemptLog`, so a flood costs bounded writes and hides nothing; a successful use
 * is recorded at most once per token, route and minute (memoised here, deduplicated by a
 * conditional write across containers); `lastUsedAt` at most once per hour. A failing
 * write is logged, never fails a request.
 */
export class TokenActivity {
  /** Recent writes by token and window: warm requests write nothing. */
  private readonly recent = new Map<string, number>();
  private readonly failures: FailedAttemptLog;

  constructor(private readonly deps: { store: AuthorizerStore; logger: Logger; now: () => number; enabled?: boolean }) {
    this.failures = new FailedAttemptLog({
      write: (aggregate) => deps.store.recordTokenFailures(aggregate),
      now: deps.now,
      onError: (err, aggregate) => deps.logger.warn('token.access-log-failed', { tokenId: aggregate.tokenId, reason: (err as { code?: string }).code ?? 'unknown' }),
    });
  }

  /** Writes failed-attempt counts whose flush slot has passed (at the start of an invocation: Lambda runs no timers). */
  async flushDue(): Promise<void> {
    if (this.deps.enabled !== false && this.failures.due()) await this.failures.flush();
  }

  /** A presented token was refused (bad secret, revoked, expired). */
  async failure(token: TokenRecord, code: string, request: DecisionRequest): Promise<void> {
    if (this.deps.enabled === false) return;
    await this.failures.record(token.id, {
      at: Math.floor(this.deps.now() / 1000),
      route: `${request.method} ${request.path}`.slice(0, 512),
      ...(request.sourceIp ? { sourceIp: request.sourceIp } : {}),
      reason: code,
    });
  }

  /** A token was used for a decided request (`route`: the matched rule, if any). */
  async use(token: TokenRecord, request: DecisionRequest, route: string | undefined, effect: 'allow' | 'deny', code: string): Promise<void> {
    if (this.deps.enabled === false) return;
    const nowS = Math.floor(this.deps.now() / 1000);
    const routeKey = route ?? `${request.method} ${request.path}`.slice(0, 512);
    const entry = { at: nowS, route: routeKey, ...(request.sourceIp ? { sourceIp: request.sourceIp } : {}), outcome: effect, reason: code };
    const writes: Promise<void>[] = [];
    if (effect === 'deny') {
      writes.push(this.deps.store.recordTokenAccess(token.id, entry));
    } else {
      const minute = Math.floor(nowS / 60);
      const memo = `use#${token.id}#${routeKey}`;
      if (this.recent.get(memo) !== minute) {
        this.remember(memo, minute);
        writes.push(this.deps.store.recordTokenAccess(token.id, entry, `use-${minute}-${fnv1a32(routeKey).toString(36)}`));
      }
      const hour = Math.floor(nowS / 3600);
      const touch = `touch#${token.id}`;
      if (this.recent.get(touch) !== hour && !(token.lastUsedAt !== undefined && token.lastUsedAt > nowS - 3600)) {
        this.remember(touch, hour);
        writes.push(this.deps.store.touchTokenLastUsed(token.id, nowS, nowS - 3600));
      }
    }
    await this.settle(token, writes);
  }

  private async settle(token: TokenRecord, writes: Promise<void>[]): Promise<void> {
    for (const r of await Promise.allSettled(writes)) {
      if (r.status === 'rejected') this.deps.logger.warn('token.access-log-failed', { tokenId: token.id, reason: (r.reason as { code?: string })?.code ?? 'unknown' });
    }
  }

  private remember(key: string, window: number): void {
    this.recent.delete(key);
    this.recent.set(key, window);
    if (this.recent.size > MAX_REMEMBERED_WRITES) {
      const oldest = this.recent.keys().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
  }
}

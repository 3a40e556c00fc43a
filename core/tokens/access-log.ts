import type { AccessLogAggregate } from '../store/types';

/** One failed attempt on a token (a 401 for a token that exists). */
export interface FailedAttempt {
  /** Epoch seconds. */
  at: number;
  route: string;
  sourceIp?: string;
  reason: string;
}

export interface FailedAttemptLogOptions {
  /** Adds an aggregate to the stored log (the store's `recordTokenFailures`). */
  write: (aggregate: AccessLogAggregate) => Promise<void>;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** Longest time a counted attempt waits in memory before the next write of its key may happen. Divides 60. */
  flushIntervalSeconds?: number;
  /** Most keys held in memory; beyond it the oldest key is written out and forgotten. */
  maxKeys?: number;
  /** Told about a failed write (whose counts are kept for the next write of the key). */
  onError?: (err: unknown, aggregate: AccessLogAggregate) => void;
}

/** Default flush interval: at most 10 s of attempts per key wait in one container. */
export const DEFAULT_FLUSH_INTERVAL_SECONDS = 10;

interface KeyState {
  tokenId: string;
  minute: number;
  reason: string;
  sourceIp?: string;
  /** Attempts counted since the key's last write. */
  pending?: { count: number; route: string; firstAt: number; lastAt: number };
  /** The flush slot of the key's last write (-1: never written). */
  writtenSlot: number;
}

/**
 * Coalesces a container's failed token attempts so that hammering a known (public)
 * token id costs a bounded number of writes, while every attempt is counted (DESIGN §6).
 *
 * Attempts are aggregated per (token, reason, source IP, minute). The first attempt of a
 * key is written at once, so a failure shows in the log immediately. Later attempts of
 * the key are counted in memory and written when the flush slot (`flushIntervalSeconds`,
 * aligned to the clock, so the key's minute ends on a slot boundary) has moved on: by the
 * next attempt of any key, or by `flush()`, which the authorizer calls at the start of an
 * invocation when `due()`. Timers are of no use in Lambda (a frozen container runs none).
 *
 * Worst case, per container and key: one write per slot the key is active in, plus one
 * after its minute — 60 / 10 + 1 = 7 writes per minute with the default, whatever the
 * number of attempts; across containers, that times the containers attacked. The stored
 * items stay at one per key, because writes add to a deterministic item. What can lag is
 * the count, not the entry: attempts counted since a key's last write wait for the next
 * invocation of that container after the slot ends, and are lost only if the container
 * is never invoked again (at most one flush interval of attempts per key).
 */
export class FailedAttemptLog {
  private readonly keys = new Map<string, KeyState>();
  private readonly intervalMs: number;
  private readonly maxKeys: number;
  /** The slot of the last sweep over all keys. */
  private sweptSlot = -1;
  /** Keys with counted attempts not yet written. */
  private pendingKeys = 0;

  constructor(private readonly options: FailedAttemptLogOptions) {
    const interval = options.flushIntervalSeconds ?? DEFAULT_FLUSH_INTERVAL_SECONDS;
    if (!(interval > 0) || 60 % interval !== 0) throw new Error('flushIntervalSeconds must divide 60');
    this.intervalMs = interval * 1000;
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  /** Counts one failed attempt; writes what is due (this key's first attempt at once). Never rejects. */
  async record(tokenId: string, attempt: FailedAttempt): Promise<void> {
    const slot = this.slot();
    const out = this.sweep(slot);
    const minute = Math.floor(attempt.at / 60) * 60;
    const key = keyOf(tokenId, attempt.reason, attempt.sourceIp, minute);
    let state = this.keys.get(key);
    if (!state) {
      if (this.keys.size >= this.maxKeys) this.evictOldest(out);
      state = { tokenId, minute, reason: attempt.reason, writtenSlot: -1, ...(attempt.sourceIp !== undefined ? { sourceIp: attempt.sourceIp } : {}) };
      this.keys.set(key, state);
    }
    this.count(state, { count: 1, route: attempt.route, firstAt: attempt.at, lastAt: attempt.at });
    if (state.writtenSlot !== slot) this.take(state, slot, out);
    await this.write(out);
  }

  /** True when counted attempts wait for a write that is now due (cheap: the decision's hot path asks). */
  due(): boolean {
    return this.pendingKeys > 0 && this.slot() !== this.sweptSlot;
  }

  /** Writes every key whose attempts are due. Never rejects. */
  async flush(): Promise<void> {
    await this.write(this.sweep(this.slot()));
  }

  private slot(): number {
    return Math.floor(this.options.now() / this.intervalMs);
  }

  /** Once per slot: takes every key's waiting attempts, and forgets keys whose minute is over. */
  private sweep(slot: number): AccessLogAggregate[] {
    const out: AccessLogAggregate[] = [];
    if (slot === this.sweptSlot) return out;
    this.sweptSlot = slot;
    const currentMinute = Math.floor(this.options.now() / 60_000) * 60;
    for (const [key, state] of this.keys) {
      if (state.pending) this.take(state, slot, out);
      if (state.minute < currentMinute) this.keys.delete(key);
    }
    return out;
  }

  private evictOldest(out: AccessLogAggregate[]): void {
    const oldest = this.keys.entries().next();
    if (oldest.done) return;
    const [key, state] = oldest.value;
    if (state.pending) this.take(state, state.writtenSlot, out);
    this.keys.delete(key);
  }

  private count(state: KeyState, add: NonNullable<KeyState['pending']>): void {
    const p = state.pending;
    if (!p) {
      state.pending = { ...add };
      this.pendingKeys++;
      return;
    }
    p.count += add.count;
    if (add.firstAt < p.firstAt) {
      p.firstAt = add.firstAt;
      p.route = add.route;
    }
    if (add.lastAt > p.lastAt) p.lastAt = add.lastAt;
  }

  private take(state: KeyState, slot: number, out: AccessLogAggregate[]): void {
    const p = state.pending;
    if (!p) return;
    state.pending = undefined;
    this.pendingKeys--;
    state.writtenSlot = slot;
    out.push({ tokenId: state.tokenId, minute: state.minute, reason: state.reason, ...(state.sourceIp !== undefined ? { sourceIp: state.sourceIp } : {}), route: p.route, firstAt: p.firstAt, lastAt: p.lastAt, count: p.count });
  }

  /** Writes aggregates; a failed one goes back to its key (if still held) for the next write. */
  private async write(aggregates: AccessLogAggregate[]): Promise<void> {
    if (aggregates.length === 0) return;
    const results = await Promise.allSettled(aggregates.map((a) => this.options.write(a)));
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const a = aggregates[i]!;
      this.options.onError?.(r.reason, a);
      const key = keyOf(a.tokenId, a.reason, a.sourceIp, a.minute);
      let state = this.keys.get(key);
      if (!state && this.keys.size < this.maxKeys) {
        // Its minute was over (or it was evicted): held again until a later sweep writes it.
        state = { tokenId: a.tokenId, minute: a.minute, reason: a.reason, writtenSlot: -1, ...(a.sourceIp !== undefined ? { sourceIp: a.sourceIp } : {}) };
        this.keys.set(key, state);
      }
      if (state) this.count(state, { count: a.count, route: a.route, firstAt: a.firstAt, lastAt: a.lastAt });
    });
  }
}

function keyOf(tokenId: string, reason: string, sourceIp: string | undefined, minute: number): string {
  return `${tokenId}\u0000${reason}\u0000${sourceIp ?? ''}\u0000${minute}`;
}

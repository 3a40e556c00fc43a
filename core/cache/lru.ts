/**
 * A bounded least-recently-used cache with per-entry expiry. Memory stays flat under
 * many distinct keys: the oldest entry is evicted once `maxEntries` is reached.
 * Time comes from an injected clock (milliseconds) so tests can freeze it.
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, { value: V; expiresAtMs: number }>();
  readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: { maxEntries: number; now?: () => number }) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError('maxEntries must be a positive integer');
    }
    this.maxEntries = options.maxEntries;
    this.now = options.now ?? Date.now;
  }

  /** The value, or undefined when absent or expired (an expired entry is dropped). */
  get(key: K): V | undefined {
    const entry = this.map.get(key);
    if (!entry) return undefined;
    if (entry.expiresAtMs <= this.now()) {
      this.map.delete(key);
      return undefined;
    }
    // Re-insert to mark as most recently used.
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  /** Stores `value` until `ttlMs` from now. A non-positive TTL stores nothing. */
  set(key: K, value: V, ttlMs: number): void {
    if (!(ttlMs > 0)) {
      this.map.delete(key);
      return;
    }
    this.map.delete(key);
    this.map.set(key, { value, expiresAtMs: this.now() + ttlMs });
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.map.delete(oldest.value);
    }
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}

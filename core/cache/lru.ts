interface Entry<K, V> {
  key: K;
  value: V;
  expiresAtMs: number;
  prev: Entry<K, V> | null;
  next: Entry<K, V> | null;
}

/**
 * A bounded least-recently-used cache with per-entry expiry. Memory stays flat under
 * many distinct keys: the least recently used entry is evicted once `maxEntries` is
 * reached. A map plus a doubly linked list: every operation is O(1) (iterating a Map
 * to find its oldest key degrades under churn, so the list keeps the order instead).
 * Time comes from an injected clock (milliseconds) so tests can freeze it.
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, Entry<K, V>>();
  private head: Entry<K, V> | null = null;
  private tail: Entry<K, V> | null = null;
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
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAtMs <= this.now()) {
      this.remove(e);
      return undefined;
    }
    if (this.head !== e) {
      this.unlink(e);
      this.pushFront(e);
    }
    return e.value;
  }

  /** Stores `value` until `ttlMs` from now. A non-positive TTL stores nothing. */
  set(key: K, value: V, ttlMs: number): void {
    const existing = this.map.get(key);
    if (!(ttlMs > 0)) {
      if (existing) this.remove(existing);
      return;
    }
    const expiresAtMs = this.now() + ttlMs;
    if (existing) {
      existing.value = value;
      existing.expiresAtMs = expiresAtMs;
      if (this.head !== existing) {
        this.unlink(existing);
        this.pushFront(existing);
      }
      return;
    }
    const e: Entry<K, V> = { key, value, expiresAtMs, prev: null, next: null };
    this.map.set(key, e);
    this.pushFront(e);
    if (this.map.size > this.maxEntries && this.tail) this.remove(this.tail);
  }

  delete(key: K): void {
    const e = this.map.get(key);
    if (e) this.remove(e);
  }

  clear(): void {
    this.map.clear();
    this.head = this.tail = null;
  }

  get size(): number {
    return this.map.size;
  }

  private remove(e: Entry<K, V>): void {
    this.unlink(e);
    this.map.delete(e.key);
  }

  private unlink(e: Entry<K, V>): void {
    if (e.prev) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = e.next = null;
  }

  private pushFront(e: Entry<K, V>): void {
    e.next = this.head;
    e.prev = null;
    if (this.head) this.head.prev = e;
    this.head = e;
    if (!this.tail) this.tail = e;
  }
}

import { fnv1a32 } from '../identity/digest';

interface Entry<K, V> {
  key: K;
  value: V;
  expiresAtMs: number;
  bytes: number;
  prev: Entry<K, V> | null;
  next: Entry<K, V> | null;
}

/**
 * A bounded least-recently-used cache with per-entry expiry. Memory stays flat under
 * many distinct keys: the least recently used entries are evicted once `maxEntries` is
 * reached or, when `maxBytes` is set, once the entries' declared sizes add up to more
 * than it (each `set` says what its entry costs; an entry larger than the whole budget
 * is not stored). A map plus a doubly linked list: every operation is O(1) (iterating a Map
 * to find its oldest key degrades under churn, so the list keeps the order instead).
 * Time comes from an injected clock (milliseconds) so tests can freeze it.
 *
 * With `admitFromSecondSet`, a key is stored from its second `set` on: most keys of a
 * cache in front of many distinct callers (a new credential, a new path) come once, and
 * keeping their values only makes old-generation garbage. Which keys came lately is a
 * table of their 32-bit hashes, one per slot, the newest winning: a collision can only
 * store a value one `set` early, which is as correct as storing it later.
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, Entry<K, V>>();
  private head: Entry<K, V> | null = null;
  private tail: Entry<K, V> | null = null;
  private totalBytes = 0;
  readonly maxEntries: number;
  readonly maxBytes: number;
  private readonly now: () => number;
  /** Hashes of keys `set` lately (`admitFromSecondSet`): one slot each, the newest winning. */
  private readonly setLately: Uint32Array | undefined;
  /** Lookups that found a live entry, and those that did not (metrics). */
  hits = 0;
  misses = 0;

  constructor(options: { maxEntries: number; maxBytes?: number; now?: () => number; admitFromSecondSet?: boolean }) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError('maxEntries must be a positive integer');
    }
    if (options.maxBytes !== undefined && !(Number.isInteger(options.maxBytes) && options.maxBytes > 0)) {
      throw new RangeError('maxBytes must be a positive integer');
    }
    this.maxEntries = options.maxEntries;
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.now = options.now ?? Date.now;
    // Twice the entries, rounded up to a power of two: a key set again soon finds its slot unchanged.
    if (options.admitFromSecondSet) this.setLately = new Uint32Array(2 ** Math.ceil(Math.log2(2 * options.maxEntries)));
  }

  /** The value, or undefined when absent or expired (an expired entry is dropped). */
  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    if (e.expiresAtMs <= this.now()) {
      this.remove(e);
      this.misses++;
      return undefined;
    }
    if (this.head !== e) {
      this.unlink(e);
      this.pushFront(e);
    }
    this.hits++;
    return e.value;
  }

  /**
   * Stores `value` until `ttlMs` from now, declared to cost `bytes` (default 1; a
   * function is asked only when the value is stored). A non-positive TTL, or a size over
   * the whole budget, stores nothing (and drops an old value under the key); with
   * `admitFromSecondSet`, neither does a key's first `set`. Returns whether it stored.
   */
  set(key: K, value: V, ttlMs: number, bytes: number | ((value: V) => number) = 1): boolean {
    const existing = this.map.get(key);
    if (existing) this.remove(existing);
    if (!(ttlMs > 0)) return false;
    if (this.setLately && !existing && !this.setBefore(String(key))) return false;
    const size = typeof bytes === 'function' ? bytes(value) : bytes;
    if (size > this.maxBytes) return false;
    const e: Entry<K, V> = { key, value, expiresAtMs: this.now() + ttlMs, bytes: size, prev: null, next: null };
    this.map.set(key, e);
    this.pushFront(e);
    this.totalBytes += size;
    while ((this.map.size > this.maxEntries || this.totalBytes > this.maxBytes) && this.tail) this.remove(this.tail);
    return true;
  }

  delete(key: K): void {
    const e = this.map.get(key);
    if (e) this.remove(e);
  }

  clear(): void {
    this.map.clear();
    this.head = this.tail = null;
    this.totalBytes = 0;
  }

  get size(): number {
    return this.map.size;
  }

  /** The declared sizes of the entries held, added up. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** True when `key` was the last key set in its slot; records it either way. */
  private setBefore(key: string): boolean {
    const table = this.setLately!;
    const h = fnv1a32(key);
    const slot = h & (table.length - 1);
    if (table[slot] === h) return true;
    table[slot] = h;
    return false;
  }

  private remove(e: Entry<K, V>): void {
    this.unlink(e);
    this.map.delete(e.key);
    this.totalBytes -= e.bytes;
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

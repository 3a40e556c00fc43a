import { describe, expect, it } from 'vitest';
import { LruCache } from '../../core/cache/lru';

describe('LruCache', () => {
  it('evicts the least recently used entry', () => {
    const c = new LruCache<string, number>({ maxEntries: 2 });
    c.set('a', 1, 1000);
    c.set('b', 2, 1000);
    expect(c.get('a')).toBe(1);
    c.set('c', 3, 1000);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    expect(c.get('c')).toBe(3);
    expect(c.size).toBe(2);
  });

  it('expires entries by the injected clock and never serves them', () => {
    let now = 1000;
    const c = new LruCache<string, string>({ maxEntries: 10, now: () => now });
    c.set('k', 'v', 500);
    now = 1499;
    expect(c.get('k')).toBe('v');
    now = 1500;
    expect(c.get('k')).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('a non-positive TTL stores nothing and removes an old value', () => {
    const c = new LruCache<string, number>({ maxEntries: 10 });
    c.set('k', 1, 1000);
    c.set('k', 2, 0);
    expect(c.get('k')).toBeUndefined();
    c.set('x', 1, NaN);
    expect(c.size).toBe(0);
  });

  it('stays bounded under churn', () => {
    const c = new LruCache<number, number>({ maxEntries: 100 });
    for (let i = 0; i < 100_000; i++) {
      c.set(i, i, 1000);
      c.get(i - 50);
    }
    expect(c.size).toBe(100);
    expect(c.get(99_999)).toBe(99_999);
    expect(c.get(0)).toBeUndefined();
  });

  it('updates in place and deletes', () => {
    const c = new LruCache<string, number>({ maxEntries: 2 });
    c.set('a', 1, 1000);
    c.set('a', 2, 1000);
    expect(c.size).toBe(1);
    expect(c.get('a')).toBe(2);
    c.delete('a');
    expect(c.get('a')).toBeUndefined();
    c.clear();
    expect(c.size).toBe(0);
    expect(() => new LruCache({ maxEntries: 0 })).toThrow();
  });

  it('admitFromSecondSet: a key is stored from its second set on, and an update of a stored key is kept', () => {
    const c = new LruCache<string, number>({ maxEntries: 100, admitFromSecondSet: true });
    c.set('a', 1, 1000);
    expect(c.get('a')).toBeUndefined();
    expect(c.size).toBe(0);
    c.set('a', 2, 1000);
    expect(c.get('a')).toBe(2);
    c.set('a', 3, 1000);
    expect(c.get('a')).toBe(3);
    // A stream of keys each set once leaves nothing behind.
    for (let i = 0; i < 10_000; i++) c.set(`once-${i}`, i, 1000);
    expect(c.size).toBe(1);
    // A key whose slot was taken by later keys waits for another second set.
    const other = new LruCache<string, number>({ maxEntries: 1, admitFromSecondSet: true });
    other.set('x', 1, 1000);
    for (let i = 0; i < 64; i++) other.set(`y${i}`, i, 1000);
    other.set('x', 2, 1000);
    other.set('x', 3, 1000);
    expect(other.get('x')).toBe(3);
    // A size function is asked only when the value is stored.
    const sized = new LruCache<string, number>({ maxEntries: 10, maxBytes: 100, admitFromSecondSet: true });
    let asked = 0;
    const size = () => (asked++, 40);
    sized.set('k', 1, 1000, size);
    expect(asked).toBe(0);
    sized.set('k', 1, 1000, size);
    expect([asked, sized.bytes, sized.get('k')]).toEqual([1, 40, 1]);
  });
});

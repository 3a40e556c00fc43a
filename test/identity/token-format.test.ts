import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  TOKEN_LENGTH, base62, crc32, formatToken, generateToken, hashSecret, isTokenId, parseToken, secretMatches,
} from '../../core/identity/token-format';

describe('gatehouse token format', () => {
  it('matches zlib crc32', () => {
    for (const s of ['', 'gat_', 'hello world', 'gat_0000000000000000_' + 'a'.repeat(32)]) {
      expect(crc32(s)).toBe(zlibCrc32(s));
    }
  });

  it('base62 is most significant first, zero-padded', () => {
    expect(base62(0, 6)).toBe('000000');
    expect(base62(61, 2)).toBe('0z');
    expect(base62(62, 2)).toBe('10');
    expect(base62(0xffffffff, 6)).toBe('4gfFC3');
  });

  it('round-trips generated tokens', () => {
    for (let i = 0; i < 200; i++) {
      const t = generateToken();
      expect(t.token).toHaveLength(TOKEN_LENGTH);
      expect(t.token).toMatch(/^gat_[0-9A-Za-z]{16}_[0-9A-Za-z]{38}$/);
      expect(parseToken(t.token)).toEqual({ id: t.id, secret: t.secret });
      expect(isTokenId(t.id)).toBe(true);
    }
  });

  it('is checkable offline from the documented definition alone', () => {
    const t = formatToken('0123456789abcdef', 'A'.repeat(32));
    const body = t.slice(0, -6);
    const sum = zlibCrc32(body);
    let digits = '';
    let v = sum;
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    for (let i = 0; i < 6; i++) { digits = alphabet[v % 62] + digits; v = Math.floor(v / 62); }
    expect(t.slice(-6)).toBe(digits);
  });

  it('rejects malformed tokens and bad checksums', () => {
    const good = generateToken().token;
    const flipped = good.slice(0, 10) + (good[10] === 'a' ? 'b' : 'a') + good.slice(11);
    const bad = [
      '', 'gat_', good + 'x', good.slice(0, -1), flipped, good.replace('gat_', 'GAT_'),
      good.slice(0, 20) + '-' + good.slice(21), good.replace(/_/g, '-'), ' ' + good.slice(1), good.slice(0, -6) + '000000',
      'gat_' + 'é'.repeat(16) + '_' + 'a'.repeat(38),
    ];
    for (const b of bad) expect(parseToken(b), JSON.stringify(b)).toBeUndefined();
  });

  it('secrets are generated uniformly enough that ids never collide in practice', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => generateToken().id));
    expect(ids.size).toBe(2000);
  });

  it('compares hashes in constant time and refuses malformed stored hashes', () => {
    const { secret } = generateToken();
    const h = hashSecret(secret);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(secretMatches(secret, h)).toBe(true);
    expect(secretMatches(secret + 'x', h)).toBe(false);
    expect(secretMatches(secret, '')).toBe(false);
    expect(secretMatches(secret, h.toUpperCase())).toBe(false);
    expect(secretMatches(secret, h.slice(0, 62))).toBe(false);
  });
});

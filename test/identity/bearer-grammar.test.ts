import { describe, expect, it } from 'vitest';
import { parseBearer } from '../../core/identity/credential';
import { mulberry32 as prng } from '../support/prng';

const B64TOKEN = new Set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/');

/**
 * The reference, written from RFC 6750 §2.1 without a regular expression:
 * `Bearer` in any case, one or more spaces, a b64token (token characters, then `=`
 * padding only), optional trailing spaces; the length limits on top.
 */
function reference(value: string): string | undefined {
  if (value.length > 8192 + 16) return undefined;
  if (value.slice(0, 6).toLowerCase() !== 'bearer' || value[6] !== ' ') return undefined;
  let start = 6;
  while (value[start] === ' ') start++;
  let end = value.length;
  while (end > start && value[end - 1] === ' ') end--;
  const credential = value.slice(start, end);
  let body = credential.length;
  while (body > 0 && credential[body - 1] === '=') body--;
  if (body === 0 || [...credential.slice(0, body)].some((c) => !B64TOKEN.has(c))) return undefined;
  return credential.length <= 8192 ? credential : undefined;
}


describe('parseBearer', () => {
  it('accepts exactly what the Bearer grammar accepts, on generated inputs', () => {
    const rnd = prng(20261201);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const schemes = ['Bearer', 'bearer', 'BEARER', 'BeArEr', 'Bearer', 'Beare', 'Bearerr', 'Basic', 'Bëarer', 'Bear\u0000r', 'Bearer\t', ' Bearer', '@EARER', 'bEARER'];
    const pieces = ['a', 'Z', '9', '-', '.', '_', '~', '+', '/', '=', '==', ' ', '  ', '\t', ',', '"', '%', 'é', '\u0000', '\n', 'eyJhbGciOiJSUzI1NiJ9', '.', 'gat_', '\u{1F600}', '`', '[', '{'];
    const valid = ['a', 'Z', '9', '-', '.', '_', '~', '+', '/', 'eyJhbGciOiJSUzI1NiJ9', 'gat_'];
    let accepted = 0;
    for (let n = 0; n < 20000; n++) {
      let v = pick(schemes) + pick([' ', '  ', '', '\t', ' ']);
      const parts = Math.floor(rnd() * 8);
      // Most inputs are made of credential characters only, so both outcomes are common.
      const from = rnd() < 0.7 ? valid : pieces;
      for (let k = 0; k < parts; k++) v += pick(from);
      if (rnd() < 0.3) v += pick(['=', '==', ' ', '  ', '= ', ' =']);
      if (rnd() < 0.01) v += 'x'.repeat(8190);
      const expected = reference(v);
      if (expected !== undefined) accepted++;
      expect(parseBearer(v), JSON.stringify(v.slice(0, 80))).toBe(expected);
    }
    // Both branches were exercised in earnest.
    expect(accepted).toBeGreaterThan(2000);
    expect(accepted).toBeLessThan(18000);
  });

  it('agrees at the length limits', () => {
    for (const len of [8191, 8192, 8193]) {
      const v = `Bearer ${'a'.repeat(len)}`;
      expect(parseBearer(v)).toBe(reference(v));
    }
    expect(parseBearer(`Bearer ${'a'.repeat(8192)}`)).toBe('a'.repeat(8192));
    expect(parseBearer(`Bearer ${'a'.repeat(8193)}`)).toBeUndefined();
    expect(parseBearer(`Bearer ${'a'.repeat(8000)}${' '.repeat(300)}`)).toBeUndefined();
  });
});

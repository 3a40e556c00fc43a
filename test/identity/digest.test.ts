import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Base64url } from '../../core/identity/digest';

describe('sha256Base64url', () => {
  it('is the SHA-256 of the UTF-8 text, base64url without padding', () => {
    for (const text of ['', 'gat_abc', 'eyJhbGciOiJSUzI1NiJ9.e30.sig', 'é✓𝄞', 'x'.repeat(9000)]) {
      expect(sha256Base64url(text)).toBe(createHash('sha256').update(text, 'utf8').digest('base64url'));
    }
    expect(sha256Base64url('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
  });
});

import { describe, expect, it } from 'vitest';
import { globsIntersect, iamGlob, type GlobElement } from '../../core/gateway/glob';

const route = (...parts: (string | '{}' | '{+}')[]): GlobElement[] =>
  parts.map((p) => (p === '{}' ? { seg: true } : p === '{+}' ? { plus: true } : { lit: p }));

describe('glob intersection', () => {
  it.each([
    ['GET/orgs/*', route('GET/orgs/', '{}'), true],
    ['GET/orgs/*', route('GET/orgs/', '{}', '/secrets'), true],
    ['GET/orgs/o1/*', route('GET/orgs/', '{}', '/secrets'), true],
    ['GET/orgs/o1', route('GET/orgs/', '{}', '/secrets'), false],
    ['GET/orgs/o1/projects/*', route('GET/orgs/o2/projects/', '{}'), false],
    ['GET/orgs/o1/projects/*', route('DELETE/orgs/', '{}', '/projects/', '{}'), false],
    ['*/orgs/o1', route('DELETE/orgs/', '{}'), true],
    ['GET/a/*/c', route('GET/a/', '{}', '/', '{}', '/c'), true],
    ['GET/a/b', route('GET/a/', '{+}'), true],
    ['GET/a/', route('GET/a/', '{+}'), false],
    ['GET/a', route('GET/a/', '{}'), false],
    ['GET/', route('GET/'), true],
    ['GET/x*', route('GET/', '{}', '/y'), true],
    ['GET/x', route('GET/', '{}', '/y'), false],
  ] as const)('%s ∩ route = %s', (iam, r, expected) => {
    expect(globsIntersect(iamGlob(iam), r)).toBe(expected);
    expect(globsIntersect(r, iamGlob(iam))).toBe(expected);
  });

  it('handles long patterns without blowing up', () => {
    const long = Array.from({ length: 50 }, () => '*/').join('');
    expect(globsIntersect(iamGlob(long + 'x'), route('a/'.repeat(60) + 'x'))).toBe(true);
    expect(globsIntersect(iamGlob(long + 'x'), route('a/'.repeat(60) + 'y'))).toBe(false);
  });
});

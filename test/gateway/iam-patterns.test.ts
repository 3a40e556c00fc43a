import { describe, expect, it } from 'vitest';
import { iamPatternsRegExp } from '../../core/gateway/compile';
import { iamAllows } from '../support/iam';
import { mulberry32, pick, type Rng } from '../support/prng';

/** Characters that matter to a glob or to a regular expression, and a few plain ones. */
const CHARS = ['a', 'b', '/', '*', '?', '.', '%', '|', '(', ')', '[', '$', '^', '\\', '+', '\n'];
const text = (r: Rng, max: number) => Array.from({ length: Math.floor(r() * max) }, () => pick(r, CHARS)).join('');

describe('iamPatternsRegExp: one expression for a list of IAM resource patterns', () => {
  it('matches a tail exactly when IAM would match it against one of the patterns (generated lists and tails)', () => {
    const r = mulberry32(20261203);
    let matched = 0;
    for (let i = 0; i < 4000; i++) {
      const patterns = Array.from({ length: 1 + Math.floor(r() * 4) }, () => text(r, 7));
      const re = iamPatternsRegExp(patterns)!;
      for (let k = 0; k < 10; k++) {
        const tail = text(r, 8).replace(/[*?]/g, 'a');
        const iam = patterns.some((p) => iamAllows({ policyDocument: { Statement: [{ Effect: 'Allow', Resource: [p] }] } }, tail));
        expect(re.test(tail), `${JSON.stringify(patterns)} ${JSON.stringify(tail)}`).toBe(iam);
        if (iam) matched++;
      }
    }
    // Both outcomes were seen often: the comparison is not vacuous.
    expect(matched).toBeGreaterThan(2000);
    expect(iamPatternsRegExp([])).toBeUndefined();
  });
});

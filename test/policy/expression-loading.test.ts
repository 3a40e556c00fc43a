import { describe, expect, it } from 'vitest';
import { compilePolicy, holdsExpressions, type CompiledPolicy, type ExpressionSlot } from '../../core/authorizer/policy';
import { InvalidInput } from '../../core/errors';
import { validateExpression } from '../../core/policy/expression';
import type { RouteRule } from '../../core/policy/routes';
import type { PolicySnapshot } from '../../core/store/types';
import { effect, world } from '../authorizer/fixtures';
import { mulberry32, pick, type Rng } from '../support/prng';

/**
 * jexl is loaded on first need (core/policy/expression.ts). Nothing in this file loads it
 * before the authorizer does (vitest gives each test file its own modules), and the tests
 * run in order: the last one is the first to need it.
 */

const NOT_LOADED = /not loaded/;

/** Every slot compiling `policy` produced: its conditions and gate, and its candidate's. */
function slots(policy: CompiledPolicy): ExpressionSlot[] {
  const own = [...policy.conditions.values(), ...(policy.gate ? [policy.gate] : [])];
  return policy.candidate?.policy ? [...own, ...slots(policy.candidate.policy)] : own;
}

/** Route keys for rule `i` (distinct per rule), and one that does not parse. */
const ROUTE_KEYS = [(i: number) => `GET /a${i}`, (i: number) => `GET /b${i}/{id}`, (i: number) => `POST /c${i}`, (i: number) => `ANY /d${i}/{proxy+}`, () => 'not a route'];
const CONDITIONS: unknown[] = [undefined, undefined, 'principal.kind == "user"', 'now > 1', 7, null, ''];

function routes(r: Rng): unknown[] {
  const n = Math.floor(r() * 4);
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    if (r() < 0.1) out.push(pick(r, [null, 'GET /x', 42]));
    else {
      const condition = pick(r, CONDITIONS);
      out.push({ route: pick(r, ROUTE_KEYS)(i), resource: 'x', action: 'read', public: true, ...(condition !== undefined ? { condition } : {}) });
    }
  }
  return out;
}

function snapshot(r: Rng): PolicySnapshot {
  const gate = pick(r, [undefined, undefined, 'principal.kind != "anonymous"', 3]);
  const candidate = r() < 0.4 ? { candidate: 1, basedOn: 1, routes: r() < 0.1 ? ('broken' as unknown as RouteRule[]) : (routes(r) as RouteRule[]), ...(r() < 0.3 ? { gate: 'now > 0' } : {}) } : undefined;
  return { version: '1', routes: routes(r) as RouteRule[], roles: [], ...(gate !== undefined ? { gate: gate as string } : {}), ...(candidate ? { candidate } : {}) };
}

describe('the expression engine, loaded on first need', () => {
  it('before it is loaded, validating throws a plain error naming the loader, never invalid-expression', () => {
    let thrown: unknown;
    try {
      validateExpression('principal.kind == "user"');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect(thrown).not.toBeInstanceOf(InvalidInput);
    expect((thrown as Error).message).toMatch(/loadExpressionEngine/);
  });

  it('before it is loaded, a policy condition compiles to invalid, which denies', () => {
    const policy = compilePolicy({ version: '1', routes: [{ route: 'GET /a', resource: 'a', action: 'read', public: true, condition: 'true' }], roles: [] });
    const [slot] = [...policy.conditions.values()];
    expect(slot).toEqual({ ok: false, error: expect.stringMatching(NOT_LOADED) });
  });

  it('compiling a policy needs jexl exactly when holdsExpressions says so (1,000 generated snapshots)', () => {
    for (let seed = 1; seed <= 1000; seed++) {
      const s = snapshot(mulberry32(seed));
      const needed = slots(compilePolicy(s)).some((x) => !x.ok && NOT_LOADED.test(x.error));
      // Never compiled without asking: whatever needs jexl, holdsExpressions names.
      if (needed) expect(holdsExpressions(s), `seed ${seed}`).toBe(true);
      // And it asks for nothing more once every rule's route parses and no text is blank
      // (a dropped rule, or a blank text, is refused before jexl is asked).
      const texts = [s.gate, s.candidate?.gate, ...[s.routes, s.candidate?.routes ?? []].flat().map((x) => (x as RouteRule | null)?.condition)];
      const wellFormed =
        [s.routes, s.candidate?.routes ?? []].every((rs) => Array.isArray(rs) && rs.every((x) => typeof x === 'object' && x !== null && !String(x.route).startsWith('not'))) &&
        texts.every((t) => typeof t !== 'string' || t.trim() !== '');
      if (wellFormed) expect(needed, `seed ${seed}`).toBe(holdsExpressions(s));
    }
  });

  it('the authorizer loads it with the first policy that holds an expression, and decides with it', async () => {
    const plain = await world({ routes: [{ route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}' }] });
    const alice = await plain.jwtFor('alice');
    expect(effect(await plain.rest(plain.tokenEvent(alice, 'GET', '/orgs/acme/projects')))).toBe('Allow');
    // A policy without expressions left jexl where it was: not loaded.
    expect(() => validateExpression('true')).toThrow(NOT_LOADED);

    const conditional = await world();
    const bob = await conditional.jwtFor('bob', { email: 'bob@acme.test', email_verified: true });
    const bobUnverified = await conditional.jwtFor('bob', { email: 'bob@acme.test' });
    expect(effect(await conditional.rest(conditional.tokenEvent(bob, 'GET', '/orgs/acme/billing')))).toBe('Allow');
    expect(effect(await conditional.rest(conditional.tokenEvent(bobUnverified, 'GET', '/orgs/acme/billing')))).toBe('Deny');
    expect(validateExpression('true').reads).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { InvalidInput } from '../../core/errors';
import {
  compileExpression,
  evaluateExpression,
  loadExpressionEngine,
  MAX_EXPRESSION_DEPTH,
  MAX_EXPRESSION_LENGTH,
  validateExpression,
  type CompiledExpression,
  type ExpressionContext,
} from '../../core/policy/expression';
import { EXPRESSION_TRANSFORMS, MAX_SPLIT_PARTS } from '../../core/policy/expression-transforms';

// These tests validate and compile expressions directly: jexl is loaded on first need (core/policy/expression.ts).
await loadExpressionEngine();

const ctx = (over: Partial<ExpressionContext> = {}): ExpressionContext => ({
  principal: {
    id: 'alice',
    kind: 'user',
    email: 'alice@example.com',
    emailVerified: true,
    groups: ['admins', 'dev'],
    siteRoles: [],
    orgs: { acme: ['org-admin'] },
    claims: { tier: 'gold', teams: [{ name: 'core', role: 'lead' }, { name: 'web', role: 'member' }], flags: [0] },
  },
  request: {
    method: 'GET',
    path: '/orgs/acme',
    pathParameters: { orgId: 'acme' },
    query: { q: '1' },
    headers: { authorization: 'Bearer x', 'x-tenant': 'acme', 'x-forwarded-for': '203.0.113.9, 10.0.0.1' },
    sourceIp: '203.0.113.9',
  },
  resource: { type: 'project', action: 'read', orgId: 'acme' },
  now: 1_800_000_000,
  ...over,
});

const run = (text: string, context: ExpressionContext = ctx()) => evaluateExpression(compileExpression(text), context);

/** Asserts `text` is refused with a 400 `invalid-expression`; returns the error. */
function rejects(text: unknown, pattern?: RegExp): InvalidInput {
  let err: unknown;
  try {
    validateExpression(text);
  } catch (e) {
    err = e;
  }
  expect(err, typeof text === 'string' ? text.slice(0, 80) : typeof text).toBeInstanceOf(InvalidInput);
  const e = err as InvalidInput;
  expect(e.code).toBe('invalid-expression');
  expect(e.status).toBe(400);
  if (pattern) expect(e.message).toMatch(pattern);
  // compileExpression refuses exactly what validateExpression refuses.
  expect(() => compileExpression(text as string)).toThrow(InvalidInput);
  return e;
}

describe('valid expressions evaluate as written', () => {
  it.each([
    ['principal.emailVerified == true && principal.email|endsWith("@example.com")', true],
    ['principal.emailVerified == true && principal.email|endsWith("@evil.com")', false],
    ['request.headers["x-tenant"] == resource.orgId', true],
    ['"admins" in principal.groups', true],
    ['"root" in principal.groups', false],
    ['"example" in principal.email', true],
    ['now < 2000000000', true],
    ['now < 1000000000', false],
    ['principal.orgs.acme[0] == "org-admin"', true],
    ['principal.orgs["acme"][0] == "org-admin"', true],
    ['"org-admin" in principal.orgs.acme', true],
    ['principal.claims.tier == "gold" ? true : false', true],
    ['principal.claims.tier ?: false', false], // "gold" is truthy but not true
    ['principal.email|lower|startsWith("alice")', true],
    ['principal.email|upper == "ALICE@EXAMPLE.COM"', true],
    ['" x "|trim == "x"', true],
    ['principal.groups|length > 1', true],
    ['principal.groups|includes("dev")', true],
    ['principal.email|includes("@")', true],
    ['request.sourceIp|split(".")[0] == "203"', true],
    ['request.headers["x-forwarded-for"]|split(", ")[1] == "10.0.0.1"', true],
    ['principal.claims.teams[.role == "lead"].name == "core"', true],
    ['principal.claims.teams[.role == "owner"]|length == 0', true],
    ['principal.claims.teams[.role == "member" && .name|startsWith("w")]|length == 1', true],
    ['!(principal.kind == "service")', true],
    ['resource.type in ["project", "repo"]', true],
    ['resource.type == "project" && (resource.action == "read" || resource.action == "list")', true],
    ['principal.missing.deeper == "x"', false],
    ['!principal.missing', true],
    ['request.method != "DELETE" && request.query.q == "1"', true],
    ['(now - 1800000000) * 2 + 1 == 1 && 7 // 2 == 3 && 7 % 4 == 3 && 2 ^ 3 == 8', true],
    ['-1 < 0', true],
  ])('%s -> %s', (text, expected) => {
    expect(run(text)).toEqual({ value: expected });
  });

  it('only a result === true allows', () => {
    for (const text of ['"true"', '1', '[1]', '[]', 'principal.groups', 'principal.email', 'principal', 'principal.orgs', 'principal.nope', 'false', '"x" ?: 0']) {
      expect(run(text).value, text).toBe(false);
    }
    expect(run('true').value).toBe(true);
  });
});

describe('attacks are rejected when written', () => {
  it.each([
    // constructor, by every spelling jexl accepts
    ['principal.constructor', /access to "constructor" is not allowed/],
    ['principal["constructor"]', /access to "constructor" is not allowed.*principal\["constructor"\]/],
    ['principal["con"+"structor"]', /literal string or number key/],
    ['principal.email["constructor"]["constructor"]', /"constructor"/],
    ['""["constructor"]["constructor"]("return process")()', /syntax error/],
    ['principal.email.constructor.constructor', /"constructor"/],
    ['principal.groups[.constructor]', /"constructor"/],
    ['principal.claims.teams[.name == "x"]["constructor"]', /"constructor"/],
    ['principal|constructor', /"constructor"/],
    // prototypes and dunder names
    ['principal.__proto__', /"__proto__"/],
    ['principal["__proto__"]', /"__proto__".*principal\["__proto__"\]/],
    ['principal.claims["__proto__"]["isAdmin"]', /"__proto__"/],
    ['request.headers.prototype', /"prototype"/],
    ['request.headers["prototype"]', /"prototype"/],
    ['principal.__defineGetter__', /__defineGetter__/],
    ['principal["__lookupGetter__"]', /__lookupGetter__/],
    ['principal.__custom', /"__custom" is not allowed/],
    ['principal.groups[.__proto__ == 1]', /__proto__/],
    ['principal.toString', /"toString" is a built-in name/],
    // bracket access with a computed key (decision: refused, even for a "safe" key like an org id)
    ['principal.orgs[resource.orgId]', /literal string or number key.*principal\.orgs\[resource\.orgId\]/],
    ['principal.orgs[principal.id]', /literal/],
    ['principal.groups[0 + 0]', /literal/],
    ['principal.groups[(.x)]', /literal/],
    ['principal.groups[true]', /literal/],
    ['principal.groups[]', /literal/],
    // object literals, function calls, transforms off the allow-list
    ['{a: 1}', /object literals/],
    ['{a: 1}.a == 1', /object literals/],
    ['[{a: 1}]', /object literals/],
    ['foo()', /function calls are not allowed/],
    ['require("child_process")', /function calls/],
    ['principal.email["toString"]()', /calling a value/],
    ['principal|evilTransform', /unknown transform "evilTransform"/],
    ['principal.id|exec', /unknown transform/],
    ['principal.email|lower|eval("x")', /unknown transform "eval"/],
    ['principal.email|startsWith', /startsWith takes 1 argument, got 0/],
    ['principal.email|startsWith("a", "b")', /takes 1 argument, got 2/],
    ['principal.email|lower(1)', /lower takes 0 arguments, got 1/],
    // names outside the four roots
    ['process.env', /unknown name "process"/],
    ['this', /unknown name "this"/],
    ['global.process', /unknown name "global"/],
    ['globalThis', /unknown name/],
    ['null', /unknown name "null"/],
    ['principal.id == undefined', /unknown name "undefined"/],
    ['.relative', /relative name \.relative outside a filter/],
    ['(.principal).id', /outside a filter/],
    // truncated
    ['true ? 1 :', /conditional without an alternative/],
  ])('%s', (text, pattern) => {
    rejects(text, pattern);
  });

  it('reports where a syntax error is', () => {
    expect(rejects('principal..id', /syntax error near character 11/).details).toMatchObject({ position: 11 });
    expect(rejects('principal.id == "x" &&', /near character 22.*end of expression/).details).toMatchObject({ position: 22 });
    expect(rejects('  principal.id ==', /near character 17/).details).toMatchObject({ position: 17 });
  });

  it('names the sub-expression at fault', () => {
    expect(rejects('principal.id == "a" || principal.claims.teams[0]["__proto__"] == 1').details).toMatchObject({ at: 'principal.claims.teams[0]["__proto__"]' });
  });

  it('refuses non-strings, empties and syntax errors without crashing', () => {
    for (const bad of [42, null, undefined, {}, [], true, 10n, Symbol('x'), () => 'now'] as unknown[]) rejects(bad, /must be a string/);
    for (const bad of ['', '   ', '\n\t', '()']) rejects(bad, /must not be empty/);
    for (const bad of ['a &&', '((', '"unterminated', "'unterminated", 'principal.', '1 +', '? :', '[1,', 'principal..id', '1 + ()', '!()', 'principal @ 1', 'now now', '(principal.id == "a"', 'principal.id == "a")', 'principal.groups[0', ')(']) {
      rejects(bad, /syntax error/);
    }
  });
});

describe('size limits', () => {
  it('length', () => {
    rejects('a'.repeat(MAX_EXPRESSION_LENGTH + 1), /longer than 2000 characters/);
    const longest = `principal.id == "${'x'.repeat(MAX_EXPRESSION_LENGTH - 18)}"`;
    expect(longest).toHaveLength(MAX_EXPRESSION_LENGTH);
    expect(validateExpression(longest).reads).toEqual(['principal.id']);
  });

  it('parentheses and brackets: 32 deep is fine, 33 or 100 is not (checked before jexl parses)', () => {
    const parens = (n: number) => `${'('.repeat(n)}principal.id == "alice"${')'.repeat(n)}`;
    expect(run(parens(MAX_EXPRESSION_DEPTH)).value).toBe(true);
    rejects(parens(MAX_EXPRESSION_DEPTH + 1), /nested deeper than 32/);
    rejects(parens(100), /nested deeper than 32/);
    rejects(`${'['.repeat(100)}${']'.repeat(100)}`, /nested deeper than 32/);
    rejects(`${'!('.repeat(40)}true${')'.repeat(40)}`, /nested deeper than 32/);
    // Inside a string literal they are text.
    expect(run(`"${'('.repeat(100)}" == "${'('.repeat(100)}"`).value).toBe(true);
    expect(run(`'it\\'s (' == "it's ("`).value).toBe(true);
  });

  it('syntax-tree nesting: 32 levels is fine, 33 is not', () => {
    expect(run(`${'!'.repeat(32)}true`).value).toBe(true);
    rejects(`${'!'.repeat(33)}true`, /nested deeper than 32 levels/);
    // Conditionals nest on the right without a bracket in sight.
    expect(run(`${'now < 1 ? false : '.repeat(31)}true`).value).toBe(true);
    rejects(`${'now < 1 ? false : '.repeat(40)}true`, /nested deeper than 32 levels/);
  });

  it('chains are one level: a run of one operator, a member chain, a transform chain', () => {
    expect(run(Array.from({ length: 100 }, (_, i) => `now == ${i}`).join(' || ') + ' || now > 1').value).toBe(true);
    expect(run(`!principal${'.a'.repeat(400)}`).value).toBe(true);
    expect(run(`principal.email${'|trim'.repeat(60)}|length == 17`).value).toBe(true);
  });

  it('node count: 499 is fine, 519 is not', () => {
    expect(validateExpression(Array(250).fill('now').join('||')).reads).toEqual(['now']);
    rejects(Array(260).fill('now').join('||'), /more than 500 syntax nodes/);
  });

  it('filters nest at most two deep', () => {
    expect(validateExpression('principal.claims.a[.b[.c == 1]]|length > 0').reads).toContain('principal.claims.a.b.c');
    rejects('principal.claims.a[.b[.c[.d == 1]]]', /filters nested more than 2 deep/);
    // A filter that reads the whole list again inside itself nests too (work grows as length^depth).
    rejects('principal.claims.a[.x == 1 && principal.claims.a[.y == 1 && principal.claims.a[.z == 1]|length > 0]|length > 0]', /filters nested more than 2 deep/);
  });
});

describe('transforms', () => {
  // Every registered transform must appear here (a transform added without hostile cases fails the guard).
  const hostile: Record<string, string[]> = {
    lower: [],
    upper: [],
    trim: [],
    length: [],
    startsWith: ['1', 'principal.groups', 'principal.orgs', 'principal', '""', 'principal.email["toString"]'],
    endsWith: ['1', 'principal.groups', 'principal.orgs', 'principal', 'principal.email["toString"]'],
    includes: ['principal.orgs', 'principal.groups', 'principal', '["admins"]', 'principal.email["toString"]', 'now'],
    split: ['""', '1', 'principal.groups', 'principal.orgs', 'principal', 'principal.email["toString"]', '[","]'],
  };
  const subjects = ['principal', 'principal.orgs', 'principal.groups', 'principal.claims', 'now', 'true', 'principal.missing', 'principal.email["toString"]', 'principal.groups["map"]', '[]', '[principal]', 'principal.claims.teams[.role == "lead"]'];

  it('the hostile table covers every registered transform', () => {
    expect(Object.keys(hostile).sort()).toEqual(Object.keys(EXPRESSION_TRANSFORMS).sort());
  });

  it('given hostile subjects and arguments, every transform answers without an error', () => {
    let count = 0;
    for (const [name, args] of Object.entries(hostile)) {
      const calls = EXPRESSION_TRANSFORMS[name]!.arity === 0 ? [`|${name}`] : [...args, '"a"'].map((a) => `|${name}(${a})`);
      for (const subject of subjects) {
        for (const call of calls) {
          const text = `${subject}${call}`;
          const r = run(text);
          expect(r.error, text).toBeUndefined();
          expect(typeof r.value, text).toBe('boolean');
          count++;
        }
      }
    }
    expect(count).toBeGreaterThan(300);
  });

  it('the wrong types give undefined or false, so a comparison with them never allows', () => {
    for (const text of ['principal.orgs|lower == "x"', 'principal.groups|upper == "X"', 'principal|trim == ""', 'now|length == 10', 'principal.orgs|length >= 0', 'principal.groups|startsWith("admins")', 'principal.email|endsWith(principal.groups)', 'principal.email|includes(principal.orgs)', 'principal.email|split("")|length > 0', 'now|split("0")|length > 0', 'principal.email["toString"]|includes("function")']) {
      expect(run(text), text).toEqual({ value: false });
    }
  });

  it('called directly with any JavaScript value, none throws', () => {
    const values: unknown[] = [undefined, null, 0, NaN, -1, '', 'x', true, [], ['x'], {}, Object.create(null), () => 1, Symbol('s'), 10n, new Date(0), /re/, new Map()];
    const plain = (r: unknown) => ['undefined', 'boolean', 'number', 'string'].includes(typeof r) || (Array.isArray(r) && r.every((x) => typeof x === 'string'));
    for (const [name, t] of Object.entries(EXPRESSION_TRANSFORMS)) {
      for (const v of values) {
        for (const a of values) {
          let r: unknown;
          expect(() => (r = t.apply(v, a)), `${name}(${typeof v}, ${typeof a})`).not.toThrow();
          expect(plain(r), `${name}(${typeof v}, ${typeof a})`).toBe(true);
        }
      }
    }
  });

  it('results are plain data: predicates are booleans, conversions strings, numbers or arrays', () => {
    expect(EXPRESSION_TRANSFORMS.startsWith!.apply(['a'], 'a')).toBe(false);
    expect(EXPRESSION_TRANSFORMS.includes!.apply('abc', ['b'])).toBe(false);
    expect(EXPRESSION_TRANSFORMS.includes!.apply([{}], {})).toBe(false);
    expect(EXPRESSION_TRANSFORMS.length!.apply({ length: 5 })).toBeUndefined();
    expect(EXPRESSION_TRANSFORMS.split!.apply('a,b', '')).toBeUndefined();
  });

  it('split caps the parts of a long header', () => {
    const headers = { ...ctx().request.headers, 'x-list': Array(5000).fill('a').join(',') };
    const context = ctx({ request: { ...ctx().request, headers } });
    expect(run(`request.headers["x-list"]|split(",")|length == ${MAX_SPLIT_PARTS}`, context).value).toBe(true);
  });

  it('the allow-list has no inherited entries', () => {
    expect(Object.getPrototypeOf(EXPRESSION_TRANSFORMS)).toBeNull();
    expect(Object.isFrozen(EXPRESSION_TRANSFORMS)).toBe(true);
  });
});

describe('run-time safety', () => {
  it('errors at run time deny with a message, never throw', () => {
    const cases: [string, ExpressionContext][] = [
      ['principal["id"] == "alice"', { ...ctx(), principal: undefined } as never],
      // jexl reads a member of an empty filter result as a member of undefined
      ['principal.claims.teams[.role == "owner"].name == "core"', ctx()],
      ['principal.claims["tier"] == "gold"', { ...ctx(), principal: { ...ctx().principal, claims: undefined } }],
      ['principal.orgs + 1 == 1', ctx()], // an object with no prototype has no primitive value
      ['"x" in principal.orgs == false && principal.orgs == "x"', ctx()],
    ];
    for (const [text, context] of cases) {
      const r = run(text, context);
      expect(r.value, text).toBe(false);
      expect(r.error, text).toEqual(expect.any(String));
      expect(r.error!.length).toBeLessThanOrEqual(200);
    }
  });

  it('a context that cannot be copied denies', () => {
    const cyclic = ctx();
    (cyclic.principal.claims as Record<string, unknown>).self = cyclic;
    expect(run('true', cyclic)).toMatchObject({ value: false, error: expect.any(String) });
    expect(run('true', ctx({ now: 10n as unknown as number }))).toMatchObject({ value: false });
  });

  it('a prototype-pollution attempt through claims changes nothing', () => {
    const claims = JSON.parse('{"__proto__": {"isAdmin": true}, "constructor": {"prototype": {"isAdmin": true}}, "tier": "gold"}') as Record<string, unknown>;
    const polluted = ctx({ principal: { ...ctx().principal, claims } });
    expect(run('principal.claims.isAdmin == true', polluted).value).toBe(false);
    expect(run('principal.isAdmin == true', polluted).value).toBe(false);
    expect(run('principal.claims.tier == "gold"', polluted).value).toBe(true);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('isAdmin');
  });

  it('the context has no prototype chain: inherited names read as missing', () => {
    // `toString` and friends cannot be written after a dot (jexl cannot lex them), but a
    // bracket key can name them: on a plain object they would be functions.
    for (const text of ['!principal.claims["toString"]', '!principal["hasOwnProperty"]', '!request.headers["valueOf"]', '!resource["isPrototypeOf"]']) {
      expect(run(text).value, text).toBe(true);
    }
  });

  it('a function value read off a string is data, not something to call', () => {
    expect(run('principal.email["toString"] == principal.email["toString"]').value).toBe(true);
    expect(run('principal.email["toString"]|length == 0')).toEqual({ value: false });
  });

  it('only an object made by compileExpression runs', () => {
    const forged = { ...validateExpression('true') } as unknown as CompiledExpression;
    expect(evaluateExpression(forged, ctx())).toEqual({ value: false, error: 'not a compiled expression' });
    const copy = { ...compileExpression('true') } as CompiledExpression;
    expect(evaluateExpression(copy, ctx()).value).toBe(false);
    expect(evaluateExpression(null as never, ctx()).value).toBe(false);
  });

  it('compiles each text once, shares a frozen object, and keeps the cache bounded', () => {
    const first = compileExpression('now > 1');
    expect(compileExpression('now > 1')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.reads)).toBe(true);
    for (let i = 0; i < 1100; i++) compileExpression(`now > ${i + 2}`);
    const again = compileExpression('now > 1');
    expect(again).not.toBe(first); // evicted, compiled afresh
    expect(evaluateExpression(first, ctx()).value).toBe(true); // an evicted object still runs
  });
});

describe('what an expression reads (cache-key awareness)', () => {
  it.each([
    ['request.headers.authorization == "x"', false, false],
    ['request.headers["authorization"]|startsWith("Bearer")', false, false],
    ['request.headers.authorization|length > 10', false, false],
    ['request.headers[.authorization == "x"].authorization == "x"', false, false],
    ['request.headers["x-forwarded-for"] == "1.2.3.4"', true, false],
    ['request.headers.cookie == "a"', true, false],
    ['request.headers[.cookie == "a"].authorization == "x"', true, false], // the filter reads the cookie
    ['request.method == "GET"', true, false],
    ['request.path|startsWith("/admin")', true, false],
    ['request.pathParameters.orgId == "acme"', true, false],
    ['request.sourceIp == "1.2.3.4"', true, false],
    ['request.query.debug == "1"', true, false],
    ['"x" in request.headers', true, false],
    ['request|length == 1', true, false],
    ['principal.emailVerified == true', false, false],
    ['principal.claims.teams[.role == "lead"].name == "core"', false, false],
    ['resource.orgId == "acme"', false, false],
    ['now < 2000000000', false, true],
    ['request.method == "GET" && now > 1', true, true],
    // jexl reads a relative name from the root when the element is falsy (0, "", false, null):
    ['principal.claims.flags[.request.method == "GET"]|length > 0', true, false],
    ['principal.claims.flags[.now > 1]|length > 0', false, true],
  ])('%s: uncached=%s time=%s', (text, uncached, time) => {
    const v = validateExpression(text);
    expect(v.readsUncachedRequestData).toBe(uncached);
    expect(v.timeDependent).toBe(time);
  });

  it.each([
    ['principal.emailVerified == true', true],
    ['resource.orgId == "acme"', true],
    ['request.method == "GET"', true],
    ['request.path|startsWith("/admin")', true],
    ['request.pathParameters.orgId == "acme"', true],
    ['request.pathParameters[.x == 1]|length == 0', true],
    ['request.headers.authorization|length > 10', false],
    ['request.headers["x-approved"] == "yes"', false],
    ['request.query.debug == "1"', false],
    ['request.sourceIp == "1.2.3.4"', false],
    ['request|length == 1', false],
    ['"x" in request.headers', false],
    ['now < 2000000000', false],
    ['principal.claims.flags[.request.query == 1]|length > 0', false],
  ])('%s: fixed by the route and principal=%s', (text, fixed) => {
    expect(validateExpression(text).fixedByRoute).toBe(fixed);
  });

  it('the falsy-element fallback is real, which is why it counts as a read', () => {
    expect(run('principal.claims.flags[.request.method == "GET"]|length == 1').value).toBe(true);
    expect(run('principal.claims.flags[.request.method == "GET"]|length == 1', ctx({ request: { ...ctx().request, method: 'POST' } })).value).toBe(false);
  });

  it.each([
    ['principal.email|endsWith("@x") && request.headers["x-a"] == resource.orgId', ['principal.email', 'request.headers.x-a', 'resource.orgId']],
    ['principal.orgs.acme[0] == "org-admin"', ['principal.orgs.acme.0']],
    ['"admins" in principal.groups && "admins" in principal.groups', ['principal.groups']],
    ['request.sourceIp|split(".")[0] == "10"', ['request.sourceIp']],
    ['principal.claims.teams[.role == "lead"].name', ['principal.claims.teams.name', 'principal.claims.teams.role']],
    ['principal.claims.teams[.role == "lead"]|length > 0', ['principal.claims.teams', 'principal.claims.teams.role']],
    ['now', ['now']],
    ['principal', ['principal']],
    ['true', []],
  ])('%s reads %j', (text, reads) => {
    expect(validateExpression(text).reads).toEqual(reads);
    expect(compileExpression(text).reads).toEqual(reads);
  });
});

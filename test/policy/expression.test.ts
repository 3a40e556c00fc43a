import { describe, expect, it } from 'vitest';
import { InvalidInput } from '../../core/errors';
import { compileExpression, evaluateExpression, validateExpression, type ExpressionContext } from '../../core/policy/expression';

const ctx = (over: Partial<ExpressionContext> = {}): ExpressionContext => ({
  principal: { id: 'alice', kind: 'user', email: 'alice@example.com', emailVerified: true, groups: ['admins', 'dev'], siteRoles: [], orgs: { acme: ['org-admin'] }, claims: { tier: 'gold', teams: [{ name: 'core', role: 'lead' }, { name: 'web', role: 'member' }] } },
  request: { method: 'GET', path: '/orgs/acme', pathParameters: { orgId: 'acme' }, query: { q: '1' }, headers: { authorization: 'Bearer x', 'x-tenant': 'acme' }, sourceIp: '203.0.113.9' },
  resource: { type: 'project', action: 'read', orgId: 'acme' },
  now: 1_800_000_000,
  ...over,
});

function rejects(text: unknown, pattern?: RegExp) {
  let err: unknown;
  try {
    validateExpression(text);
  } catch (e) {
    err = e;
  }
  expect(err, JSON.stringify(text)).toBeInstanceOf(InvalidInput);
  expect((err as InvalidInput).code).toBe('invalid-expression');
  if (pattern) expect((err as Error).message).toMatch(pattern);
}

describe('valid expressions evaluate as written', () => {
  it.each([
    ['principal.emailVerified == true && principal.email|endsWith("@example.com")', true],
    ['request.headers["x-tenant"] == resource.orgId', true],
    ['"admins" in principal.groups', true],
    ['"root" in principal.groups', false],
    ['now < 2000000000', true],
    ['principal.orgs.acme[0] == "org-admin"', true],
    ['principal.claims.tier == "gold" ? true : false', true],
    ['principal.email|lower|startsWith("alice")', true],
    ['principal.groups|length > 1', true],
    ['request.sourceIp|split(".")[0] == "203"', true],
    ['principal.claims.teams[.role == "lead"].name == "core"', true],
    ['principal.claims.teams[.role == "owner"].name == "core"', false],
    ['!(principal.kind == "service")', true],
    ['resource.type in ["project", "repo"]', true],
    ['principal.email|includes("@")', true],
    ['principal.missing.deeper == "x"', false],
  ])('%s -> %s', (text, expected) => {
    const r = evaluateExpression(compileExpression(text), ctx());
    expect(r.value).toBe(expected);
  });

  it('only a result === true allows', () => {
    for (const text of ['"true"', '1', '[1]', 'principal.groups', 'principal.email', 'principal', 'principal.nope', 'false']) {
      expect(evaluateExpression(compileExpression(text), ctx()).value, text).toBe(false);
    }
    expect(evaluateExpression(compileExpression('true'), ctx()).value).toBe(true);
  });
});

describe('attacks are rejected when written', () => {
  it.each([
    ['principal.constructor', /constructor/],
    ['principal["constructor"]', /constructor/],
    ['principal["con"+"structor"]', /literal/],
    ['""["constructor"]["constructor"]("return process")()', /.+/],
    ['principal.email.constructor.constructor', /constructor/],
    ['principal.__proto__', /__proto__/],
    ['principal["__proto__"]', /__proto__/],
    ['request.headers.prototype', /prototype/],
    ['principal.__defineGetter__', /__defineGetter__/],
    ['principal.orgs[resource.orgId]', /literal/],
    ['principal.orgs[principal.id]', /literal/],
    ['{a: 1}', /object literal/],
    ['{a: 1}.a == 1', /object literal/],
    ['foo()', /function/],
    ['principal|evilTransform', /unknown transform/],
    ['process.env', /unknown name/],
    ['this', /unknown name/],
    ['global.process', /unknown name/],
    ['.relative', /relative/],
    ['principal.groups[.constructor]', /constructor/],
    ['principal.groups[.__proto__ == 1]', /__proto__/],
  ])('%s', (text, pattern) => rejects(text, pattern));

  it('limits length, depth and size', () => {
    rejects('a'.repeat(2001), /longer than 2000/);
    rejects(Array.from({ length: 300 }, () => 'principal.id == "x"').join(' || '), /nodes|deeper|longer/);
    rejects('!'.repeat(40) + 'true', /deeper/);
  });

  it('refuses non-strings, empties and syntax errors without crashing', () => {
    for (const bad of [42, null, undefined, {}, [], '', '   ', 'a &&', '((', '"unterminated', 'principal.', '1 +', '? :', '[1,', 'principal..id']) rejects(bad);
  });
});

describe('runtime safety', () => {
  it('transforms given hostile arguments return false/undefined, never throw', () => {
    const texts = [
      'principal.groups|lower == "x"', 'principal.orgs|upper == "x"', 'principal|trim == "x"', 'now|length == 1',
      'principal.groups|startsWith(1)', 'principal.email|endsWith(principal.groups)', 'principal.email|includes(principal.orgs)',
      'principal.email|split("")', 'principal.email|split(principal.orgs)', 'now|split(".")', 'principal.email|startsWith()',
    ];
    for (const t of texts) {
      const r = evaluateExpression(compileExpression(t), ctx());
      expect(r.value, t).toBe(false);
    }
  });

  it('errors at run time deny with a message, never throw', () => {
    const r = evaluateExpression(compileExpression('principal.id|length > 0'), { ...ctx(), principal: undefined } as never);
    expect(r.value).toBe(false);
  });

  it('a prototype-pollution attempt through claims changes nothing', () => {
    const polluted = ctx({ principal: { ...ctx().principal, claims: JSON.parse('{"__proto__": {"isAdmin": true}, "constructor": {"name": "x"}}') } });
    expect(evaluateExpression(compileExpression('principal.claims.isAdmin == true'), polluted).value).toBe(false);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('the context cannot reach Object.prototype even without validation', () => {
    const expr = compileExpression('principal.claims.tier == "gold"');
    const evil = { ...expr, evaluate: (c: unknown) => (c as { principal: { claims: Record<string, unknown> } }).principal.claims.toString };
    expect(evaluateExpression(evil, ctx()).value).toBe(false);
    const probe = { ...expr, evaluate: (c: unknown) => (c as Record<string, unknown>).hasOwnProperty === undefined };
    expect(evaluateExpression(probe, ctx()).value).toBe(true);
  });

  it('compiles each text once', () => {
    expect(compileExpression('now > 1')).toBe(compileExpression('now > 1'));
  });
});

describe('what an expression reads (cache-key awareness)', () => {
  it.each([
    ['request.headers.authorization == "x"', false, false],
    ['request.headers["authorization"]|startsWith("Bearer")', false, false],
    ['request.headers["x-forwarded-for"] == "1.2.3.4"', true, false],
    ['request.method == "GET"', true, false],
    ['request.sourceIp == "1.2.3.4"', true, false],
    ['request.query.debug == "1"', true, false],
    ['"x" in request.headers', true, false],
    ['principal.emailVerified == true', false, false],
    ['resource.orgId == "acme"', false, false],
    ['now < 2000000000', false, true],
  ])('%s: uncached=%s time=%s', (text, uncached, time) => {
    const v = validateExpression(text);
    expect(v.readsUncachedRequestData).toBe(uncached);
    expect(v.timeDependent).toBe(time);
  });

  it('lists read paths', () => {
    expect(validateExpression('principal.email|endsWith("@x") && request.headers["x-a"] == resource.orgId').reads).toEqual(['principal.email', 'request.headers.x-a', 'resource.orgId']);
  });
});

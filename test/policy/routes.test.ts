import { describe, expect, it } from 'vitest';
import { InvalidInput } from '../../core/errors';
import { compileRouteTable, parseRouteKey, resolveBinding, validateRouteRules, type RouteRule } from '../../core/policy/routes';

const r = (route: string, extra: Partial<RouteRule> = {}): RouteRule => ({ route, resource: 'thing', action: 'read', ...extra });

describe('route keys', () => {
  it.each(['GET /', 'ANY /{proxy+}', 'GET /orgs/{orgId}/projects/{projectId}', 'POST /a.b/c-d/e_f/~x/$connect', 'DELETE /v1/{id}', 'GET /files/{path+}'])('accepts %s', (k) => {
    expect(() => parseRouteKey(k)).not.toThrow();
  });

  it.each([
    ['get /x'], ['GET x'], ['FETCH /x'], ['GET  /x'], ['GET /x/'], ['GET //x'], ['GET /{a}/{a}'], ['GET /{p+}/x'], ['GET /{1a}'], ['GET /{a'], ['GET /a}'],
    ['GET /a b'], ['GET /a?b'], ['GET /a#b'], ['GET /a*'], ['GET /' + 'a/'.repeat(21) + 'a'], ['GET /' + 'a'.repeat(600)], ['GET /x%2F'],
  ])('rejects %j', (k) => {
    expect(() => parseRouteKey(k)).toThrow(InvalidInput);
  });
});

describe('matching: most specific wins', () => {
  const table = compileRouteTable([
    r('GET /orgs/{orgId}'),
    r('GET /orgs/mine'),
    r('ANY /orgs/{orgId}/projects'),
    r('GET /orgs/{orgId}/projects'),
    r('GET /orgs/{orgId}/{proxy+}'),
    r('ANY /{proxy+}'),
    r('GET /'),
    r('POST /a/{x}/c'),
    r('POST /a/b/{y}'),
  ]);
  it.each([
    ['GET', '/orgs/mine', 'GET /orgs/mine', {}],
    ['GET', '/orgs/acme', 'GET /orgs/{orgId}', { orgId: 'acme' }],
    ['GET', '/orgs/acme/projects', 'GET /orgs/{orgId}/projects', { orgId: 'acme' }],
    ['POST', '/orgs/acme/projects', 'ANY /orgs/{orgId}/projects', { orgId: 'acme' }],
    ['GET', '/orgs/acme/projects/p1/x', 'GET /orgs/{orgId}/{proxy+}', { orgId: 'acme', proxy: 'projects/p1/x' }],
    ['DELETE', '/orgs/acme', 'ANY /{proxy+}', { proxy: 'orgs/acme' }],
    ['GET', '/', 'GET /', {}],
    ['POST', '/a/b/c', 'POST /a/b/{y}', { y: 'c' }],
    ['POST', '/a/z/c', 'POST /a/{x}/c', { x: 'z' }],
    ['GET', '/orgs/a%20b', 'GET /orgs/{orgId}', { orgId: 'a b' }],
  ])('%s %s -> %s', (method, path, route, params) => {
    const m = table.match(method, path);
    expect(m?.rule.route).toBe(route);
    expect({ ...m?.pathParameters }).toEqual(params);
  });

  it.each([
    ['GET', '/orgs/acme/'], ['GET', '//orgs'], ['GET', ''], ['GET', 'orgs'], ['GET', '/orgs/%zz'], ['GET', '/orgs/a%2Fb'], ['GET', '/orgs/a%00'],
    ['get', '/orgs/acme'], ['GET', '/' + 'a/'.repeat(100)], ['GET', '/x'.repeat(3000)],
  ])('%s %j matches nothing (and never throws)', (method, path) => {
    const t = compileRouteTable([r('GET /orgs/{orgId}'), r('GET /orgs/{orgId}/projects')]);
    expect(t.match(method, path)).toBeUndefined();
  });

  it('a greedy proxy needs at least one segment', () => {
    const t = compileRouteTable([r('GET /files/{path+}')]);
    expect(t.match('GET', '/files')).toBeUndefined();
    expect(t.match('GET', '/files/a')?.pathParameters).toEqual({ path: 'a' });
  });

  it('1,000 generated routes all match themselves', () => {
    const rules = Array.from({ length: 1000 }, (_, i) => r(`GET /svc${i}/{orgId}/items/{itemId}`));
    const t = compileRouteTable(rules);
    for (let i = 0; i < 1000; i += 37) expect(t.match('GET', `/svc${i}/acme/items/x`)?.rule).toBe(rules[i]);
    expect(t.match('GET', '/svc1000/acme/items/x')).toBeUndefined();
  });
});

describe('route table validation', () => {
  it('accepts a good table and binds org/owner', () => {
    const rules = validateRouteRules([r('GET /orgs/{orgId}', { org: '{orgId}' }), r('GET /u/{userId}', { owner: '{userId}' }), r('GET /fixed', { org: 'acme' })]);
    expect(rules).toHaveLength(3);
    expect(resolveBinding('{orgId}', { orgId: 'x' })).toBe('x');
    expect(resolveBinding('acme', {})).toBe('acme');
    expect(resolveBinding('{nope}', {})).toBeUndefined();
    expect(resolveBinding('{constructor}', {})).toBeUndefined();
  });

  it.each([
    ['not an array', {}, 'invalid-routes'],
    ['non-object', [5], 'invalid-route'],
    ['unknown field', [{ ...r('GET /x'), extra: 1 }], 'invalid-route'],
    ['bad resource', [r('GET /x', { resource: 'Thing' })], 'invalid-route'],
    ['bad action', [r('GET /x', { action: '' })], 'invalid-route'],
    ['org names a missing param', [r('GET /x', { org: '{orgId}' })], 'invalid-route'],
    ['org from a greedy param', [r('GET /x/{p+}', { org: '{p}' })], 'invalid-route'],
    ['org literal with odd characters', [r('GET /x', { org: 'a/b' })], 'invalid-route'],
    ['public not boolean', [r('GET /x', { public: 'yes' as never })], 'invalid-route'],
    ['condition not string', [r('GET /x', { condition: 5 as never })], 'invalid-route'],
    ['duplicate', [r('GET /x'), r('GET /x')], 'duplicate-route'],
    ['duplicate with renamed params', [r('GET /o/{a}'), r('GET /o/{b}')], 'duplicate-route'],
    ['too many', Array.from({ length: 2001 }, (_, i) => r(`GET /r${i}`)), 'invalid-routes'],
  ])('%s', (_n, rules, code) => {
    let err: unknown;
    try {
      validateRouteRules(rules);
    } catch (e) {
      err = e;
    }
    expect((err as InvalidInput).code).toBe(code);
  });

  it('wraps condition errors with the route', () => {
    expect(() => validateRouteRules([r('GET /x', { condition: 'bad' })], { validateCondition: () => { throw new Error('nope'); } })).toThrow(/routes\[0\] \(GET \/x\)\.condition: nope/);
  });
});

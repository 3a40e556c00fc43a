/** Policy diffs (core/policy/policy-diff.ts) and the history's change summaries and version numbers (core/policy/policy-history.ts). */
import { describe, expect, it } from 'vitest';
import { canonicalJson, diffPolicies, type PolicyContent } from '../../core/policy/policy-diff';
import { parseVersion, summarizeChange, SUMMARY_NAMES } from '../../core/policy/policy-history';
import type { PolicyTest } from '../../core/policy/policy-set';
import type { RouteRule } from '../../core/policy/routes';

const A: RouteRule = { route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}' };
const B: RouteRule = { route: 'GET /health', resource: 'health', action: 'read', public: true };
const C: RouteRule = { route: 'POST /orgs/{orgId}/deploy', resource: 'deployment', action: 'create', org: '{orgId}' };
const T = (name: string, expect: PolicyTest['expect'] = 'allow'): PolicyTest => ({ name, principal: { kind: 'anonymous' }, request: { method: 'GET', path: '/health' }, expect });
const content = (routes: RouteRule[], gate: string | null = null, tests: PolicyTest[] = []): PolicyContent => ({ routes, gate, tests });

describe('diffPolicies', () => {
  it('equal content is identical whatever the order of rules and of keys', () => {
    const shuffled = { public: true, action: 'read', resource: 'health', route: 'GET /health' } as RouteRule;
    const d = diffPolicies(content([A, B], 'true', [T('x')]), content([shuffled, A], 'true', [T('x')]));
    expect(d).toEqual({ identical: true, routes: { added: [], removed: [], changed: [] }, tests: { added: [], removed: [], changed: [] } });
  });

  it('rules are keyed by route shape: a renamed parameter is a change, not a removal and an addition', () => {
    const renamed: RouteRule = { ...A, route: 'GET /orgs/{o}/projects', org: '{o}' };
    const d = diffPolicies(content([A, B]), content([renamed, C]));
    expect(d.identical).toBe(false);
    expect(d.routes).toEqual({ added: [C], removed: [B], changed: [{ route: renamed.route, from: A, to: renamed, fields: ['route', 'org'] }] });
    expect(d.gate).toBeUndefined();
  });

  it('gate and tests: the gate as a from/to pair, tests by name', () => {
    const d = diffPolicies(content([], null, [T('kept'), T('edited'), T('gone')]), content([], 'now > 0', [T('kept'), T('edited', 'deny'), T('new')]));
    expect(d.gate).toEqual({ from: null, to: 'now > 0' });
    expect(d.tests).toEqual({ added: ['new'], removed: ['gone'], changed: ['edited'] });
    expect(diffPolicies(content([], 'x'), content([], null)).gate).toEqual({ from: 'x', to: null });
  });

  it('a stored rule whose key does not parse is keyed by its text', () => {
    const odd = { route: 'NOT A ROUTE', resource: 'x', action: 'y' } as RouteRule;
    expect(diffPolicies(content([odd]), content([])).routes.removed).toEqual([odd]);
    expect(diffPolicies(content([odd]), content([odd])).identical).toBe(true);
  });

  it('canonicalJson sorts keys and drops undefined fields', () => {
    expect(canonicalJson({ b: 1, a: [{ d: undefined, c: 'x' }] })).toBe('{"a":[{"c":"x"}],"b":1}');
  });
});

describe('summarizeChange', () => {
  it('names what changed, bounded: at most SUMMARY_NAMES names per list and 200 characters per name', () => {
    const many = Array.from({ length: SUMMARY_NAMES + 5 }, (_, i): RouteRule => ({ route: `GET /r${i}`, resource: 'r', action: 'read' }));
    const s = summarizeChange(content([B]), content(many, 'true', [T('t'.repeat(300))]));
    expect(s.routes.added).toEqual(many.slice(0, SUMMARY_NAMES).map((r) => r.route));
    expect(s.routes.removed).toEqual([B.route]);
    expect(s.gate).toBe(true);
    expect(s.tests.added).toEqual([`${'t'.repeat(199)}…`]);
    expect(s.truncated).toBe(true);
    expect(summarizeChange(content([A]), content([A, B]))).toEqual({ routes: { added: [B.route], removed: [], changed: [] }, gate: false, tests: { added: [], removed: [], changed: [] }, truncated: false });
  });
});

describe('parseVersion', () => {
  it('takes a non-negative integer as a number or digits, and nothing else', () => {
    expect([0, 7, '0', '12', '000000000000012'].map(parseVersion)).toEqual([0, 7, 0, 12, 12]);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 60, '', '-1', '1e3', ' 1', '0x10', '9'.repeat(16), null, undefined, {}, [1]]) expect(parseVersion(bad), String(bad)).toBeUndefined();
  });
});

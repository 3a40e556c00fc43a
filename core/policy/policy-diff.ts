import type { PolicyTest } from './policy-set';
import { parseRouteKey, routeShape, type RouteRule } from './routes';

/** The parts of a policy set that a write replaces (what `PUT /policies/sets/{set}` takes). */
export interface PolicyContent {
  routes: readonly RouteRule[];
  gate: string | null;
  tests: readonly PolicyTest[];
}

/** How one policy set's content differs from another's: what writing `to` over `from` would change. */
export interface PolicyDiff {
  identical: boolean;
  routes: {
    added: RouteRule[];
    removed: RouteRule[];
    /** Same route shape, different rule (`route` shows the new key). */
    changed: { route: string; from: RouteRule; to: RouteRule; fields: string[] }[];
  };
  /** Present when the gate differs. */
  gate?: { from: string | null; to: string | null };
  tests: { added: string[]; removed: string[]; changed: string[] };
}

/** JSON with object keys sorted, so two values equal in content compare equal as text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

const RULE_FIELDS: (keyof RouteRule)[] = ['route', 'resource', 'action', 'org', 'owner', 'condition', 'public'];

/**
 * Compares two policy contents. Rules are keyed by route shape (the route with parameter
 * names erased), the key that makes two rules the same rule for the admin API, so a
 * renamed parameter is a change of one rule rather than a removal and an addition. Rules
 * whose key does not parse are keyed by their text. Tests are keyed by name. The order of
 * rules does not count (the most specific route wins, wherever it stands).
 */
export function diffPolicies(from: PolicyContent, to: PolicyContent): PolicyDiff {
  const key = (r: RouteRule) => {
    try {
      return routeShape(parseRouteKey(r.route));
    } catch {
      return `?${String(r.route)}`;
    }
  };
  const before = new Map(from.routes.map((r) => [key(r), r]));
  const after = new Map(to.routes.map((r) => [key(r), r]));
  const routes: PolicyDiff['routes'] = { added: [], removed: [], changed: [] };
  for (const [k, r] of after) {
    const old = before.get(k);
    if (!old) routes.added.push(r);
    else if (canonicalJson(old) !== canonicalJson(r)) {
      const fields = RULE_FIELDS.filter((f) => canonicalJson(old[f]) !== canonicalJson(r[f]));
      routes.changed.push({ route: r.route, from: old, to: r, fields });
    }
  }
  for (const [k, r] of before) if (!after.has(k)) routes.removed.push(r);

  const testsBefore = new Map(from.tests.map((t) => [t.name, canonicalJson(t)]));
  const testsAfter = new Map(to.tests.map((t) => [t.name, canonicalJson(t)]));
  const tests: PolicyDiff['tests'] = { added: [], removed: [], changed: [] };
  for (const [name, t] of testsAfter) {
    const old = testsBefore.get(name);
    if (old === undefined) tests.added.push(name);
    else if (old !== t) tests.changed.push(name);
  }
  for (const name of testsBefore.keys()) if (!testsAfter.has(name)) tests.removed.push(name);

  const gateChanged = (from.gate ?? null) !== (to.gate ?? null);
  const identical = !gateChanged && [routes.added, routes.removed, routes.changed, tests.added, tests.removed, tests.changed].every((l) => l.length === 0);
  return { identical, routes, ...(gateChanged ? { gate: { from: from.gate ?? null, to: to.gate ?? null } } : {}), tests };
}

import { InvalidInput } from '../errors';

/** An operator's route rule (DESIGN §4, Routes). */
export interface RouteRule {
  /** `"METHOD /path/{param}/{proxy+}"`; METHOD may be `ANY`. */
  route: string;
  resource: string;
  action: string;
  /** `"{param}"` (bound from the path) or a literal org id. */
  org?: string;
  /** `"{param}"` (bound from the path) or a literal user id. */
  owner?: string;
  /** A jexl expression that must hold. */
  condition?: string;
  /** Public routes skip the gate and the role decision (the condition still applies). */
  public?: boolean;
}

export type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'proxy'; name: string };

export interface ParsedRoute {
  method: string;
  segments: Segment[];
  /** Parameter names in order. */
  params: string[];
}

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'ANY'] as const;
const LITERAL_RE = /^[A-Za-z0-9._~\-$:@!]+$/;
const PARAM_RE = /^\{([A-Za-z][A-Za-z0-9_]*)(\+?)\}$/;
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
const ID_RE = /^[A-Za-z0-9._:@|+-]{1,128}$/;
const MAX_ROUTES = 2000;

function bad(route: unknown, message: string): never {
  throw new InvalidInput('invalid-route', `route ${JSON.stringify(String(route).slice(0, 120))}: ${message}`);
}

/** Parses and validates a route key such as `GET /orgs/{orgId}/projects/{proxy+}`. */
export function parseRouteKey(route: string): ParsedRoute {
  if (typeof route !== 'string') bad(route, 'must be a string');
  if (route.length > 512) bad(route, 'longer than 512 characters');
  const m = /^([A-Z]+) (\/[^ ]*)$/.exec(route);
  if (!m) bad(route, 'expected "METHOD /path"');
  const method = m[1]!;
  if (!(METHODS as readonly string[]).includes(method)) bad(route, `unknown method ${method}`);
  const path = m[2]!;
  if (path === '/') return { method, segments: [], params: [] };
  const parts = path.slice(1).split('/');
  if (parts.length > 20) bad(route, 'more than 20 segments');
  const segments: Segment[] = [];
  const params: string[] = [];
  parts.forEach((part, i) => {
    if (part === '') bad(route, 'empty path segment');
    const p = PARAM_RE.exec(part);
    if (p) {
      const name = p[1]!;
      if (params.includes(name)) bad(route, `duplicate parameter {${name}}`);
      params.push(name);
      if (p[2] === '+') {
        if (i !== parts.length - 1) bad(route, `greedy {${name}+} must be the last segment`);
        segments.push({ kind: 'proxy', name });
      } else segments.push({ kind: 'param', name });
      return;
    }
    if (part.includes('{') || part.includes('}')) bad(route, `malformed parameter ${JSON.stringify(part)}`);
    if (!LITERAL_RE.test(part)) bad(route, `invalid characters in segment ${JSON.stringify(part)}`);
    segments.push({ kind: 'literal', value: part });
  });
  return { method, segments, params };
}

/** The shape of a route with parameter names erased: two routes with the same shape are duplicates. */
export function routeShape(parsed: ParsedRoute): string {
  return `${parsed.method} /${parsed.segments.map((s) => (s.kind === 'literal' ? s.value : s.kind === 'param' ? '{}' : '{+}')).join('/')}`;
}

function bindingSpec(where: string, spec: unknown, parsed: ParsedRoute): void {
  if (typeof spec !== 'string') throw new InvalidInput('invalid-route', `${where}: must be a string`);
  const p = /^\{([A-Za-z][A-Za-z0-9_]*)\}$/.exec(spec);
  if (p) {
    const seg = parsed.segments.find((s) => s.kind !== 'literal' && s.name === p[1]);
    if (!seg) throw new InvalidInput('invalid-route', `${where}: the route has no parameter {${p[1]}}`);
    if (seg.kind === 'proxy') throw new InvalidInput('invalid-route', `${where}: a greedy parameter cannot name an org or owner`);
    return;
  }
  if (!ID_RE.test(spec)) throw new InvalidInput('invalid-route', `${where}: expected "{param}" or a literal id`);
}

/**
 * Validates a whole route table (structure, names, bindings, duplicates). Conditions
 * are checked with `validateCondition` when given. Errors name the route index.
 */
export function validateRouteRules(rules: unknown, options: { validateCondition?: (text: string) => void } = {}): RouteRule[] {
  if (!Array.isArray(rules)) throw new InvalidInput('invalid-routes', 'routes must be an array');
  if (rules.length > MAX_ROUTES) throw new InvalidInput('invalid-routes', `at most ${MAX_ROUTES} routes`);
  const shapes = new Map<string, number>();
  return rules.map((raw, i) => {
    const where = `routes[${i}]`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidInput('invalid-route', `${where}: must be an object`);
    const r = raw as Record<string, unknown>;
    for (const k of Object.keys(r)) {
      if (!['route', 'resource', 'action', 'org', 'owner', 'condition', 'public'].includes(k)) {
        throw new InvalidInput('invalid-route', `${where}: unknown field ${JSON.stringify(k)}`);
      }
    }
    let parsed: ParsedRoute;
    try {
      parsed = parseRouteKey(r.route as string);
    } catch (err) {
      throw new InvalidInput('invalid-route', `${where}: ${(err as Error).message}`);
    }
    const name = `${where} (${r.route as string})`;
    if (typeof r.resource !== 'string' || !(r.resource === '*' || NAME_RE.test(r.resource))) throw new InvalidInput('invalid-route', `${name}.resource: lower-case name or *`);
    if (typeof r.action !== 'string' || !(r.action === '*' || NAME_RE.test(r.action))) throw new InvalidInput('invalid-route', `${name}.action: lower-case name or *`);
    if (r.org !== undefined) bindingSpec(`${name}.org`, r.org, parsed);
    if (r.owner !== undefined) bindingSpec(`${name}.owner`, r.owner, parsed);
    if (r.public !== undefined && typeof r.public !== 'boolean') throw new InvalidInput('invalid-route', `${name}.public: boolean`);
    if (r.condition !== undefined) {
      if (typeof r.condition !== 'string') throw new InvalidInput('invalid-route', `${name}.condition: must be a string`);
      try {
        options.validateCondition?.(r.condition);
      } catch (err) {
        throw new InvalidInput('invalid-expression', `${name}.condition: ${(err as Error).message}`, { route: r.route, index: i });
      }
    }
    const shape = routeShape(parsed);
    const prev = shapes.get(shape);
    if (prev !== undefined) throw new InvalidInput('duplicate-route', `${name}: same route as routes[${prev}]`, { route: r.route, index: i });
    shapes.set(shape, i);
    const rule: RouteRule = { route: r.route as string, resource: r.resource, action: r.action };
    if (r.org !== undefined) rule.org = r.org as string;
    if (r.owner !== undefined) rule.owner = r.owner as string;
    if (r.condition !== undefined) rule.condition = r.condition;
    if (r.public !== undefined) rule.public = r.public;
    return rule;
  });
}

export interface RouteMatch {
  rule: RouteRule;
  parsed: ParsedRoute;
  pathParameters: Record<string, string>;
}

interface Node {
  literal: Map<string, Node>;
  param?: Node;
  /** Rules ending here, by method. */
  end: Map<string, { rule: RouteRule; parsed: ParsedRoute }>;
  /** Greedy rules rooted here, by method. */
  proxy: Map<string, { rule: RouteRule; parsed: ParsedRoute }>;
}

const newNode = (): Node => ({ literal: new Map(), end: new Map(), proxy: new Map() });

export interface RouteTable {
  /** Rules with their parsed keys, in table order. */
  entries: { rule: RouteRule; parsed: ParsedRoute }[];
  /** The most specific rule for a request, or undefined (-> deny). Never throws. */
  match(method: string, path: string): RouteMatch | undefined;
}

/** Splits and percent-decodes a request path; undefined for anything that cannot be a route path. */
export function splitPath(path: string): string[] | undefined {
  if (typeof path !== 'string' || path.length === 0 || path.length > 4096 || path[0] !== '/') return undefined;
  if (path === '/') return [];
  const raw = path.slice(1).split('/');
  if (raw.length > 64) return undefined;
  const out: string[] = [];
  for (const r of raw) {
    let seg = r;
    // Only a segment with an escape needs decoding (most have none; decoding is not free).
    if (r.includes('%')) {
      try {
        seg = decodeURIComponent(r);
      } catch {
        return undefined;
      }
    }
    // Empty segments (`//`, a trailing slash) and NULs never match: no normalisation surprises.
    if (seg === '' || seg.includes('\u0000') || seg.includes('/')) return undefined;
    out.push(seg);
  }
  return out;
}

/**
 * Indexes rules once into a segment trie. Matching walks it depth-first preferring
 * literal > `{param}` > `{proxy+}` at each segment, left to right, and an exact
 * method over `ANY` — "most specific wins".
 */
export function compileRouteTable(rules: readonly RouteRule[]): RouteTable {
  const root = newNode();
  const entries: { rule: RouteRule; parsed: ParsedRoute }[] = [];
  const seen = new Set<string>();
  for (const rule of rules) {
    const parsed = parseRouteKey(rule.route);
    const shape = routeShape(parsed);
    if (seen.has(shape)) throw new InvalidInput('duplicate-route', `duplicate route ${rule.route}`);
    seen.add(shape);
    entries.push({ rule, parsed });
    let node = root;
    for (const seg of parsed.segments) {
      if (seg.kind === 'proxy') break;
      if (seg.kind === 'literal') {
        let next = node.literal.get(seg.value);
        if (!next) node.literal.set(seg.value, (next = newNode()));
        node = next;
      } else node = node.param ??= newNode();
    }
    const last = parsed.segments[parsed.segments.length - 1];
    (last?.kind === 'proxy' ? node.proxy : node.end).set(parsed.method, { rule, parsed });
  }

  const pick = (m: Map<string, { rule: RouteRule; parsed: ParsedRoute }>, method: string) => m.get(method) ?? m.get('ANY');

  const walk = (node: Node, segs: string[], i: number, method: string): { rule: RouteRule; parsed: ParsedRoute } | undefined => {
    if (i === segs.length) return pick(node.end, method);
    const lit = node.literal.get(segs[i]!);
    if (lit) {
      const r = walk(lit, segs, i + 1, method);
      if (r) return r;
    }
    if (node.param) {
      const r = walk(node.param, segs, i + 1, method);
      if (r) return r;
    }
    return pick(node.proxy, method);
  };

  return {
    entries,
    match(method: string, path: string): RouteMatch | undefined {
      if (typeof method !== 'string' || !/^[A-Z]{1,10}$/.test(method)) return undefined;
      const segs = splitPath(path);
      if (!segs) return undefined;
      const found = walk(root, segs, 0, method);
      if (!found) return undefined;
      const pathParameters = Object.create(null) as Record<string, string>;
      found.parsed.segments.forEach((seg, i) => {
        if (seg.kind === 'param') pathParameters[seg.name] = segs[i]!;
        else if (seg.kind === 'proxy') pathParameters[seg.name] = segs.slice(i).join('/');
      });
      return { rule: found.rule, parsed: found.parsed, pathParameters };
    },
  };
}

/** Binds an org/owner spec: `{param}` from the path parameters, else the literal itself. */
export function resolveBinding(spec: string | undefined, pathParameters: Record<string, string>): string | undefined {
  if (spec === undefined) return undefined;
  const p = /^\{([A-Za-z][A-Za-z0-9_]*)\}$/.exec(spec);
  if (!p) return spec;
  return Object.prototype.hasOwnProperty.call(pathParameters, p[1]!) ? pathParameters[p[1]!] : undefined;
}

import { decideRoute, type DecisionRequest } from '../authorizer/decide';
import type { CompiledPolicy, ExpressionSlot } from '../authorizer/policy';
import type { ParsedRoute, RouteRule } from '../policy/routes';
import type { Principal } from '../rbac/types';
import { pathNfa, patternNfa, SearchTooLarge, witness, type Nfa, type PathPart } from './automata';

/**
 * The IAM answer compiler (DESIGN §5): from a policy and a principal to Allow and Deny
 * patterns whose verdict, for every method ARN of an API and stage, equals `decide()`'s.
 *
 * API Gateway applies a cached answer to every route of the API, and IAM's `*` also
 * matches across `/`. So every entitled route binding gets an Allow (path parameters
 * bound for the principal's orgs and id, `*` elsewhere), and Denies carve out what an
 * Allow wildcard would wrongly cover: a parameter value holding `/`, a more specific route
 * the principal may not use, an empty segment, a percent escape. Nothing is listed on
 * faith: each Deny is proven never to cover an entitled path, and each Allow is proven
 * (exactly, with the automata of `automata.ts`) to cover nothing but entitled paths once
 * the Denies are applied. What cannot be proven is left out (cached answers refuse it; the
 * live request is still decided) and reported, so an answer is always sound, and exact
 * unless it says otherwise.
 *
 * Paths are compared as the method ARN spells them. The route table decodes percent
 * escapes, the IAM match does not, so every answer with a wildcard denies paths holding
 * `%`; such requests are decided live only.
 */

/** The methods API Gateway routes (`ANY` stands for each of them). */
export const EXPLICIT_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

/** `*` for a parameter a grant holds for whatever its value. */
export const ANY = '*';
/** Never an id or a route literal: stands for "a value the principal holds nothing in". */
const SENTINEL = '\u0001';
/** Values that may be written into an IAM resource: nothing IAM treats as a wildcard. */
const SAFE_VALUE = /^[A-Za-z0-9._~@:+|-]{1,128}$/;
/**
 * Denied by every answer with a wildcard (unless the Deny would cover an entitled path):
 * - a path holding a percent escape: the route table decodes escapes (`s%65cret` is
 *   `secret`), IAM matches the text as written, so no wildcard may decide such a path;
 * - an empty segment (`//`) or a trailing slash after a segment: no route matches them
 *   (a fresh decision is `no-route`), and a `*` would.
 * The live request is decided; the cache refuses these.
 */
export const ALWAYS_DENIED = ['*%*', '*//*', '*/?*/'] as const;

/** A value bound to each org/owner parameter of a rule (`*`: any value). */
export type Binding = Readonly<Record<string, string>>;

/** A route binding the principal may use, and how it is listed. */
/** A Deny pattern and its language. */
interface Carve {
  pattern: string;
  language: Nfa;
  lead: string;
}

interface Grant {
  rule: RouteRule;
  method: string;
  binding: Binding;
  parts: PathPart[];
  /** Its IAM pattern, or undefined when a bound value cannot be written safely. */
  pattern?: string;
  language: Nfa;
  higher: Nfa[];
  lead: string;
}

/** What an answer for one principal lists, independent of the API and stage it is for. */
export interface CompiledStatements {
  /** Allow patterns (tails after `<apiId>/<stage>/`). */
  allow: readonly string[];
  deny: readonly string[];
  /** Bytes the patterns take in an answer, without the ARN prefix each gets. */
  bytes: number;
  /** Route bindings whose paths the statements cover exactly, by rule and method. */
  covered: ReadonlyMap<RouteRule, ReadonlyMap<string, readonly Binding[]>>;
  /** Entitled routes the statements leave out (cached answers refuse them; a live request is decided). */
  omitted: readonly string[];
  /** The gate reads request data: no statement can hold for another request. */
  perRequest: boolean;
}

/**
 * How IAM matches resource patterns: `*` any run of characters (`/` too), `?` exactly
 * one. One expression for a list (any of them matches), undefined for none.
 */
export function iamPatternsRegExp(patterns: readonly string[]): RegExp | undefined {
  if (patterns.length === 0) return undefined;
  const each = patterns.map((p) => p.replace(/[.+^${}()|[\]\\/]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.'));
  return new RegExp(`^(?:${each.join('|')})$`, 's');
}

function paramRef(spec: string | undefined): string | undefined {
  const m = spec === undefined ? null : /^\{([A-Za-z][A-Za-z0-9_]*)\}$/.exec(spec);
  return m ? m[1] : undefined;
}

/** True when an expression reads `resource` (an invalid one too: it cannot be reasoned about). */
function readsResource(slot: ExpressionSlot | undefined): boolean {
  return slot !== undefined && (!slot.ok || slot.compiled.reads.some((r) => r === 'resource' || r.startsWith('resource.')));
}

/** True when an expression needs request data no cached answer shares (or cannot be read at all). */
function perRequestSlot(slot: ExpressionSlot | undefined): boolean {
  return slot !== undefined && (!slot.ok || slot.compiled.readsUncachedRequestData);
}

/**
 * Every binding of a rule's org/owner parameters the principal may use, decided by
 * `decideRoute` itself: org parameters over the principal's orgs, owner parameters over
 * the principal, and `*` (decided for a value no principal holds) when the grant holds
 * regardless of the value. Undefined for a rule no cached answer may cover.
 */
function grantsOf(
  policy: CompiledPolicy,
  principal: Principal,
  rule: RouteRule,
  parsed: ParsedRoute,
  request: DecisionRequest,
  nowMs: number,
  unlisted: Set<string>,
): Binding[] | undefined {
  const condition = policy.conditions.get(rule);
  if (perRequestSlot(condition)) return undefined;
  const orgParam = paramRef(rule.org);
  const ownerParam = paramRef(rule.owner);
  const orgs = orgParam ? [ANY, ...Object.keys(principal.orgs)] : [undefined];
  const owners = ownerParam ? [ANY, ...(principal.kind === 'user' ? [principal.id] : [])] : [undefined];
  const out: Binding[] = [];
  for (const org of orgs) {
    for (const owner of owners) {
      // A narrower binding is redundant once a wider one holds.
      if (out.some((b) => (!orgParam || b[orgParam] === ANY || b[orgParam] === org) && (!ownerParam || b[ownerParam] === ANY || b[ownerParam] === owner))) continue;
      const unbound = org === ANY || owner === ANY;
      // "Any value" is decided for a value nobody holds, which generalises only when no
      // expression reads the value: otherwise values outside the principal's own may be
      // allowed, and are not listed (reported as left out).
      if (unbound && (readsResource(policy.gate) || readsResource(condition))) {
        unlisted.add(rule.route);
        continue;
      }
      const pathParameters: Record<string, string> = {};
      if (orgParam) pathParameters[orgParam] = org === ANY ? SENTINEL : org!;
      if (ownerParam) pathParameters[ownerParam] = owner === ANY ? SENTINEL : owner!;
      if (!decideRoute(policy, principal, request, { rule, parsed, pathParameters }, nowMs).allowed) continue;
      const b: Record<string, string> = {};
      if (orgParam) b[orgParam] = org!;
      if (ownerParam) b[ownerParam] = owner!;
      out.push(b);
    }
  }
  return out;
}

/** The route's parts for one method under a binding (bound values literal, `*` and unbound parameters one segment). */
function parts(parsed: ParsedRoute, method: string, binding: Binding): PathPart[] {
  const out: PathPart[] = [{ lit: `${method}/` }];
  parsed.segments.forEach((seg, i) => {
    if (i > 0) out.push({ lit: '/' });
    if (seg.kind === 'literal') out.push({ lit: seg.value });
    else if (seg.kind === 'proxy') out.push({ segs: true });
    else {
      const v = binding[seg.name];
      out.push(v === undefined || v === ANY ? { seg: true } : { lit: v });
    }
  });
  return out;
}

/** The IAM pattern of parts (`*` for any parameter), or undefined when a literal is unsafe in one. */
function pattern(p: readonly PathPart[]): string | undefined {
  let out = '';
  for (const part of p) {
    if ('lit' in part) {
      if (/[*?]/.test(part.lit)) return undefined;
      out += part.lit;
    } else out += '*';
  }
  return out;
}

/** The text before a pattern's or route's first wildcard: two languages can only meet when one lead prefixes the other. */
function leadOf(p: readonly PathPart[]): string {
  let out = '';
  for (const part of p) {
    if (!('lit' in part)) break;
    out += part.lit;
  }
  return out;
}
const leadOfPattern = (pat: string) => pat.slice(0, pat.search(/[*?]|$/));
const compatible = (a: string, b: string) => a.startsWith(b) || b.startsWith(a);

const RANK = { literal: 0, param: 1, proxy: 2 } as const;

/**
 * True when the route table prefers `a` to `b` for a path both match: the first segment
 * where their kinds differ decides (literal, then parameter, then proxy); the same shape
 * prefers an exact method to `ANY`. False when no path matches both.
 */
function before(a: ParsedRoute, b: ParsedRoute): boolean {
  for (let i = 0; ; i++) {
    const x = a.segments[i];
    const y = b.segments[i];
    if (!x || !y) {
      if (!x && !y) return a.method !== 'ANY' && b.method === 'ANY';
      // One ended: only a proxy could still match more.
      return false;
    }
    if (x.kind === 'literal' && y.kind === 'literal') {
      if (x.value !== y.value) return false;
      continue;
    }
    if (x.kind !== y.kind) return RANK[x.kind] < RANK[y.kind];
    if (x.kind === 'proxy') return a.method !== 'ANY' && b.method === 'ANY';
  }
}

const methodsOf = (parsed: ParsedRoute): readonly string[] => (parsed.method === 'ANY' ? EXPLICIT_METHODS : [parsed.method]);

/** Per policy: each rule's language and the rules it yields to, per method (principal-independent). */
interface RouteIndex {
  entries: { rule: RouteRule; parsed: ParsedRoute; byMethod: Map<string, { language: Nfa; lead: string; higher: Nfa[] }> }[];
  /** Every rule's language for a method, with its lead. */
  byMethod: Map<string, { language: Nfa; lead: string }[]>;
}
const indexes = new WeakMap<CompiledPolicy, RouteIndex>();

function routeIndex(policy: CompiledPolicy): RouteIndex {
  const cached = indexes.get(policy);
  if (cached) return cached;
  const all = policy.table.entries;
  const index: RouteIndex = { entries: [], byMethod: new Map(EXPLICIT_METHODS.map((m) => [m, []])) };
  const languages = new Map<string, { language: Nfa; lead: string }>();
  const languageOf = (entry: (typeof all)[number], method: string) => {
    const k = `${all.indexOf(entry)}\u0000${method}`;
    let l = languages.get(k);
    if (!l) {
      const p = parts(entry.parsed, method, {});
      languages.set(k, (l = { language: pathNfa(p), lead: leadOf(p) }));
    }
    return l;
  };
  for (const entry of all) {
    const byMethod = new Map<string, { language: Nfa; lead: string; higher: Nfa[] }>();
    for (const method of methodsOf(entry.parsed)) {
      const own = languageOf(entry, method);
      const higher = all
        .filter((o) => o !== entry && (o.parsed.method === method || o.parsed.method === 'ANY') && before(o.parsed, entry.parsed))
        .map((o) => languageOf(o, method))
        .filter((o) => compatible(o.lead, own.lead))
        .map((o) => o.language);
      byMethod.set(method, { ...own, higher });
      index.byMethod.get(method)!.push(own);
    }
    index.entries.push({ rule: entry.rule, parsed: entry.parsed, byMethod });
  }
  indexes.set(policy, index);
  return index;
}

/** A decision made for a rule in general, not for one live request (no headers, query or path). */
const NO_REQUEST: DecisionRequest = Object.freeze({ method: 'GET', path: '/', headers: Object.freeze({}), query: Object.freeze({}) });

/**
 * Compiles the statements of a principal's answers under `policy`. `identity` is the
 * request's identity source, given when an expression reads the credential itself.
 * `maxBytes` bounds the patterns: past it nothing is proven and the answer is `cut`.
 */
export function compileStatements(
  policy: CompiledPolicy,
  principal: Principal,
  nowMs: number,
  options: { identity?: Record<string, string>; maxBytes: number },
): CompiledStatements | 'cut' {
  const empty: CompiledStatements = { allow: [], deny: [], bytes: 0, covered: new Map(), omitted: [], perRequest: true };
  if (perRequestSlot(policy.gate)) return empty;
  const request = options.identity ? { ...NO_REQUEST, headers: options.identity } : NO_REQUEST;
  const index = routeIndex(policy);

  // 1. What the principal may use, binding by binding, decided by decideRoute.
  const grants: Grant[] = [];
  /** Entitled bindings by rule and method, as languages (the negatives of "not entitled"). */
  const entitled = new Map<RouteRule, Map<string, Nfa[]>>();
  const omitted = new Set<string>();
  let listedBytes = 0;
  for (const entry of index.entries) {
    const bindings = grantsOf(policy, principal, entry.rule, entry.parsed, request, nowMs, omitted) ?? [];
    if (bindings.length === 0) continue;
    const perMethod = new Map<string, Nfa[]>();
    entitled.set(entry.rule, perMethod);
    for (const [method, own] of entry.byMethod) {
      const languages: Nfa[] = [];
      perMethod.set(method, languages);
      for (const binding of bindings) {
        const p = parts(entry.parsed, method, binding);
        const unsafe = Object.values(binding).some((v) => v !== ANY && !SAFE_VALUE.test(v));
        const language = pathNfa(p);
        languages.push(language);
        // A binding whose every path a more specific rule takes (an `ANY` beside the same
        // route for this method) has nothing to list.
        if (own.higher.length > 0 && witness([language], own.higher) === undefined) continue;
        const pat = unsafe ? undefined : pattern(p);
        if (pat === undefined) omitted.add(entry.rule.route);
        grants.push({ rule: entry.rule, method, binding, parts: p, ...(pat !== undefined ? { pattern: pat } : {}), language, higher: own.higher, lead: leadOf(p) });
        // The Allows alone must fit: past the budget nothing more is worth deciding or proving.
        if (pat !== undefined && (listedBytes += pat.length + 3) > options.maxBytes) return 'cut';
      }
    }
  }
  const listed = grants.filter((g) => g.pattern !== undefined);
  const wildcard = listed.some((g) => g.pattern!.includes('*'));

  // 2. Candidate Denies: what a wildcard could wrongly cover.
  const candidates = new Set<string>(wildcard ? ALWAYS_DENIED : []);
  for (const g of listed) {
    const pat = g.pattern!;
    // A single-segment parameter's `*` also matches `a/b`: deny the value holding a `/`.
    const kinds = g.parts.filter((part) => !('lit' in part));
    let star = -1;
    for (const kind of kinds) {
      star = pat.indexOf('*', star + 1);
      if ('seg' in kind) candidates.add(`${pat.slice(0, star)}*/*${pat.slice(star + 1)}`);
    }
    // Another route the wildcard reaches, which the principal may not use (fully): deny it
    // there, spelled under this grant's literals.
    for (const other of index.entries) {
      const own = other.byMethod.get(g.method);
      if (!own || other.rule === g.rule || !compatible(own.lead, g.lead)) continue;
      const carve = carvePattern(g.parts, parts(other.parsed, g.method, {}));
      if (carve !== undefined) candidates.add(carve);
    }
  }

  try {
    // 3. Denies. A free one covers no entitled path. One that does (say `GET/orgs/*/*/projects`
    // also takes the project literally named `projects`) is adopted only where it lets an
    // Allow through that would otherwise be left out, takes nothing from that Allow's own
    // route and all of no other route; the routes it takes from are then reported as
    // inexact (cached answers refuse those paths; a fresh decision allows them).
    const free: Carve[] = [];
    const costly: Carve[] = [];
    for (const d of candidates) {
      const carve = { pattern: d, language: patternNfa(d), lead: leadOfPattern(d) };
      const costsNothing = grants.every((g) => !compatible(carve.lead, g.lead) || witness([carve.language, g.language], g.higher) === undefined);
      (costsNothing ? free : costly).push(carve);
    }
    const allowOf = new Map(listed.map((g) => [g, { language: patternNfa(g.pattern!), lead: leadOfPattern(g.pattern!) }]));
    const fits = (g: Grant, denies: Carve[]) => covers(index, g.method, allowOf.get(g)!.language, allowOf.get(g)!.lead, entitled, denies);
    const adopted = new Set<Carve>();
    for (const g of listed) {
      if (costly.length === 0 || fits(g, [...free, ...adopted])) continue;
      const a = allowOf.get(g)!;
      const chosen: Carve[] = [];
      for (const c of costly) {
        if (adopted.has(c) || !compatible(c.lead, a.lead) || witness([c.language, a.language]) === undefined) continue;
        if (witness([c.language, g.language], g.higher) !== undefined) continue;
        if (grants.some((o) => compatible(c.lead, o.lead) && witness([o.language], [c.language]) === undefined)) continue;
        chosen.push(c);
        if (fits(g, [...free, ...adopted, ...chosen])) {
          for (const x of chosen) adopted.add(x);
          break;
        }
      }
    }
    const denies = [...free, ...adopted];
    const deny = denies.map((d) => d.pattern);
    const denyLanguages = denies;

    // 4. An Allow is kept only if, with the Denies, it covers nothing but entitled paths.
    const allow: string[] = [];
    const covered = new Map<RouteRule, Map<string, Binding[]>>();
    for (const g of listed) {
      if (!fits(g, denies)) {
        omitted.add(g.rule.route);
        continue;
      }
      allow.push(g.pattern!);
      let perMethod = covered.get(g.rule);
      if (!perMethod) covered.set(g.rule, (perMethod = new Map()));
      const list = perMethod.get(g.method) ?? [];
      list.push(g.binding);
      perMethod.set(g.method, list);
    }
    // A Deny is written only where it carves from a kept Allow (`*%*` wherever an Allow has a wildcard).
    const allowLanguages = allow.map((a) => ({ language: patternNfa(a), lead: leadOfPattern(a) }));
    const kept = deny.filter((d, i) =>
      (ALWAYS_DENIED as readonly string[]).includes(d)
        ? allow.some((a) => a.includes('*'))
        : allowLanguages.some((a) => compatible(a.lead, denyLanguages[i]!.lead) && witness([a.language, denyLanguages[i]!.language]) !== undefined),
    );
    // What a written Deny takes from an entitled route is no longer exact there.
    for (const c of adopted) {
      if (!kept.includes(c.pattern)) continue;
      for (const g of grants) if (compatible(c.lead, g.lead) && witness([c.language, g.language], g.higher) !== undefined) omitted.add(g.rule.route);
    }
    const bytes = [...new Set(allow)].reduce((n, p) => n + p.length + 3, 0) + kept.reduce((n, p) => n + p.length + 3, 0);
    if (bytes > options.maxBytes) return 'cut';
    const allowed = [...new Set(allow)];
    return { allow: allowed, deny: kept, bytes, covered, omitted: [...omitted], perRequest: false };
  } catch (err) {
    // A comparison too large to finish proves nothing: the answer covers the live request only.
    if (err instanceof SearchTooLarge) return 'cut';
    throw err;
  }
}

/**
 * True when `language` (an Allow, with the Denies) covers only entitled paths of
 * `method`: no path that no rule routes (API Gateway may still route it, say to a
 * `{proxy+}` route with no rule of its own, and a fresh decision refuses it), and for every
 * rule, nothing of it the principal may not use (more specific rules take their share
 * first). Denies carve out what an Allow's wildcard reaches beyond its route where that
 * costs no entitled path; where it would, the Allow is left out (fail closed).
 */
function covers(
  index: RouteIndex,
  method: string,
  language: Nfa,
  lead: string,
  entitled: Map<RouteRule, Map<string, Nfa[]>>,
  denies: { language: Nfa; lead: string }[],
): boolean {
  const deny = denies.filter((d) => compatible(d.lead, lead)).map((d) => d.language);
  const routed = index.byMethod.get(method)!.filter((r) => compatible(r.lead, lead)).map((r) => r.language);
  if (witness([language], [...deny, ...routed]) !== undefined) return false;
  for (const entry of index.entries) {
    const own = entry.byMethod.get(method);
    if (!own || !compatible(own.lead, lead)) continue;
    const mine = entitled.get(entry.rule)?.get(method) ?? [];
    if (witness([language, own.language], [...own.higher, ...deny, ...mine]) !== undefined) return false;
  }
  return true;
}

/**
 * Another route's pattern spelled under a grant's literals (where the grant has a literal
 * and the route a parameter, the literal), or undefined when the two cannot line up.
 */
function carvePattern(grant: readonly PathPart[], route: readonly PathPart[]): string | undefined {
  if (route.length < grant.length && !route.some((p) => 'segs' in p)) return undefined;
  const out: PathPart[] = [];
  for (let i = 0; i < route.length; i++) {
    const x = grant[i];
    const y = route[i]!;
    if (x === undefined || 'segs' in y || !('lit' in x)) out.push(y);
    else if ('lit' in y) {
      if (x.lit !== y.lit) return undefined;
      out.push(y);
    } else out.push(x);
  }
  return pattern(out);
}

import { decideRoute } from '../authorizer/decide';
import type { CompiledPolicy, ExpressionSlot } from '../authorizer/policy';
import type { ParsedRoute, RouteRule } from '../policy/routes';
import type { Principal } from '../rbac/types';
import type { MethodArn } from './arn';
import { atoms, atomsIntersect, iamGlob, leadingLiteral, type Atom, type GlobElement } from './glob';

/** A value bound to a route parameter, or `*` when the grant holds for any value. */
type Bindings = Record<string, string>;
const ANY = '*';
/** Never appears in an id or a route literal: stands for "some value not in the entitled set". */
const SENTINEL = '\u0001';
/** What a decision for a rule in general (not for one live request) is made on. */
const NO_REQUEST = Object.freeze({ method: 'GET', path: '/', headers: Object.freeze({}), query: Object.freeze({}) });
/** Values that may be written into an ARN literally: nothing that could widen a grant. */
const SAFE_VALUE = /^[A-Za-z0-9._~@:+|-]{1,128}$/;

export interface Entitlement {
  rule: RouteRule;
  /** Every binding of the rule's org/owner parameters the principal may use. */
  bindings: Bindings[];
  /** True when the rule is allowed for every value of its parameters. */
  full: boolean;
}

/** The ARNs of an Allow, and why anything was left out. */
export interface EntitlementResult {
  resources: string[];
  /** Routes the principal may use that could not be listed exactly (logged). */
  omitted: string[];
  /** True when a gate or the route needs per-request data: only the current ARN is listed. */
  perRequest: boolean;
}

function paramRef(spec: string | undefined): string | undefined {
  if (!spec) return undefined;
  const m = /^\{([A-Za-z][A-Za-z0-9_]*)\}$/.exec(spec);
  return m ? m[1] : undefined;
}

/** True when an expression (an invalid one included: it cannot be reasoned about) reads `resource`. */
function readsResource(slot: ExpressionSlot | undefined): boolean {
  if (!slot) return false;
  return !slot.ok || slot.compiled.reads.some((r) => r === 'resource' || r.startsWith('resource.'));
}

/**
 * Which routes a principal may use, for every binding of the rule's org/owner path
 * parameters: org parameters expand over the principal's orgs (or `*` when the
 * site level allows regardless of org), owner parameters bind to the principal.
 * Routes whose condition needs request data, or whose condition cannot be
 * decided for an unbound value, are not expandable: only the live request decides them.
 */
export function computeEntitlements(
  policy: CompiledPolicy,
  principal: Principal | undefined,
  nowMs: number,
  identity?: Record<string, string>,
): { entitlements: Entitlement[]; perRequest: boolean } {
  // The identity source is the one piece of the request every cached answer shares.
  const request = identity ? { ...NO_REQUEST, headers: identity } : NO_REQUEST;
  const gate = policy.gate;
  const gateIsPerRequest = gate !== undefined && (!gate.ok || gate.compiled.readsUncachedRequestData);
  if (gateIsPerRequest) return { entitlements: [], perRequest: true };
  const orgCandidates = principal ? Object.keys(principal.orgs) : [];
  const out: Entitlement[] = [];
  for (const { rule, parsed } of policy.table.entries) {
    const orgParam = paramRef(rule.org);
    const ownerParam = paramRef(rule.owner);
    const cond = policy.conditions.get(rule);
    if (cond && (!cond.ok || cond.compiled.readsUncachedRequestData)) {
      out.push({ rule, bindings: [], full: false });
      continue;
    }
    const orgValues = orgParam ? [ANY, ...orgCandidates] : [rule.org ?? ''];
    const ownerValues = ownerParam ? [ANY, ...(principal?.kind === 'user' ? [principal.id] : [])] : [rule.owner ?? ''];
    const bindings: Bindings[] = [];
    let full = false;
    for (const org of orgValues) {
      for (const owner of ownerValues) {
        // A narrower binding is redundant once a wider one (ANY) holds.
        if (orgParam && org !== ANY && bindings.some((b) => b[orgParam] === ANY && (!ownerParam || b[ownerParam] === ANY || b[ownerParam] === owner))) continue;
        if (ownerParam && owner !== ANY && bindings.some((b) => b[ownerParam] === ANY && (!orgParam || b[orgParam] === org))) continue;
        // An unbound org/owner stands for every value the principal holds nothing in: the
        // decision is made for a value no principal can hold, and it generalises only when
        // no expression reads the resource (site-level grants do not depend on the org).
        const unbound = (orgParam !== undefined && org === ANY) || (ownerParam !== undefined && owner === ANY);
        if (unbound && (readsResource(policy.gate) || readsResource(cond))) continue;
        const pathParameters: Record<string, string> = {};
        if (orgParam) pathParameters[orgParam] = org === ANY ? SENTINEL : org;
        if (ownerParam) pathParameters[ownerParam] = owner === ANY ? SENTINEL : owner;
        if (!decideRoute(policy, principal, request, { rule, parsed, pathParameters }, nowMs).allowed) continue;
        const b: Bindings = {};
        if (orgParam) b[orgParam] = org;
        if (ownerParam) b[ownerParam] = owner;
        bindings.push(b);
        if ((!orgParam || org === ANY) && (!ownerParam || owner === ANY)) full = true;
      }
    }
    if (!orgParam && !ownerParam) full = bindings.length > 0;
    out.push({ rule, bindings: full ? [bindingsAllAny(orgParam, ownerParam)] : bindings, full });
  }
  return { entitlements: out, perRequest: false };
}

function bindingsAllAny(orgParam?: string, ownerParam?: string): Bindings {
  const b: Bindings = {};
  if (orgParam) b[orgParam] = ANY;
  if (ownerParam) b[ownerParam] = ANY;
  return b;
}

/** The glob a rule's paths form under `bindings` (unbound parameters: one segment; proxy: one or more). */
function ruleGlob(parsed: ParsedRoute, bindings: Bindings, methodAsWildcard: boolean): GlobElement[] {
  const out: GlobElement[] = [];
  if (parsed.method === 'ANY') out.push(methodAsWildcard ? { any: true } : { seg: true });
  else out.push({ lit: parsed.method });
  if (parsed.segments.length === 0) out.push({ lit: '/' });
  for (const seg of parsed.segments) {
    out.push({ lit: '/' });
    if (seg.kind === 'literal') out.push({ lit: seg.value });
    else if (seg.kind === 'proxy') out.push({ plus: true });
    else {
      const v = bindings[seg.name];
      if (v === undefined || v === ANY) out.push({ seg: true });
      else out.push({ lit: v });
    }
  }
  return out;
}

/**
 * IAM resource paths (after the stage) for a rule under bindings, or undefined when a
 * value is unsafe. `ANY` is spelled out method by method: a `*` method would also
 * match across `/` into other routes' paths.
 */
function ruleArnPaths(parsed: ParsedRoute, bindings: Bindings): { path: string; wildcard: boolean; method: string }[] | undefined {
  const methods = parsed.method === 'ANY' ? EXPLICIT_METHODS : [parsed.method];
  const out: { path: string; wildcard: boolean; method: string }[] = [];
  for (const method of methods) {
    const one = ruleArnPath(parsed, bindings, method);
    if (!one) return undefined;
    out.push({ ...one, method });
  }
  return out;
}

const EXPLICIT_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

function ruleArnPath(parsed: ParsedRoute, bindings: Bindings, method: string): { path: string; wildcard: boolean } | undefined {
  let wildcard = false;
  let path = method;
  if (parsed.segments.length === 0) return { path: path + '/', wildcard };
  for (const seg of parsed.segments) {
    if (seg.kind === 'literal') {
      if (!SAFE_VALUE.test(seg.value) && seg.value !== '$connect') return undefined;
      path += '/' + seg.value;
    } else if (seg.kind === 'proxy') {
      path += '/*';
      wildcard = true;
    } else {
      const v = bindings[seg.name];
      if (v === undefined || v === ANY) {
        path += '/*';
        wildcard = true;
      } else {
        if (!SAFE_VALUE.test(v)) return undefined;
        path += '/' + v;
      }
    }
  }
  return { path, wildcard };
}

interface IndexEntry {
  rule: RouteRule;
  parsed: ParsedRoute;
  lead: string;
  atoms: Atom[];
  /** Params bound from org/owner specs. */
  bound: string[];
}

/** Per-policy index of rule globs by leading literal, built once per policy version. */
interface GlobIndex {
  byRule: Map<RouteRule, IndexEntry>;
  byLead: Map<string, IndexEntry[]>;
  sortedLeads: string[];
  /** Rules whose glob starts with a wildcard (`ANY` method): candidates for everything. */
  unanchored: IndexEntry[];
}

const indexes = new WeakMap<CompiledPolicy, GlobIndex>();

function globIndex(policy: CompiledPolicy): GlobIndex {
  let idx = indexes.get(policy);
  if (idx) return idx;
  idx = { byRule: new Map(), byLead: new Map(), sortedLeads: [], unanchored: [] };
  for (const { rule, parsed } of policy.table.entries) {
    const glob = ruleGlob(parsed, {}, false);
    const entry: IndexEntry = {
      rule,
      parsed,
      lead: leadingLiteral(glob),
      atoms: atoms(glob),
      bound: [paramRef(rule.org), paramRef(rule.owner)].filter((p): p is string => p !== undefined),
    };
    idx.byRule.set(rule, entry);
    if (entry.lead === '') idx.unanchored.push(entry);
    else {
      const list = idx.byLead.get(entry.lead);
      if (list) list.push(entry);
      else idx.byLead.set(entry.lead, [entry]);
    }
  }
  idx.sortedLeads = [...idx.byLead.keys()].sort();
  indexes.set(policy, idx);
  return idx;
}

/** Rules whose paths could intersect a glob starting with `lead`: one leading literal must prefix the other. */
function candidates(idx: GlobIndex, lead: string): IndexEntry[] {
  const out: IndexEntry[] = [...idx.unanchored];
  for (let i = 1; i < lead.length; i++) {
    const list = idx.byLead.get(lead.slice(0, i));
    if (list) out.push(...list);
  }
  // Leads that start with `lead` (including equal) sit in one sorted range.
  let lo = 0;
  let hi = idx.sortedLeads.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (idx.sortedLeads[mid]! < lead) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < idx.sortedLeads.length && idx.sortedLeads[i]!.startsWith(lead); i++) out.push(...idx.byLead.get(idx.sortedLeads[i]!)!);
  return out;
}

/**
 * Turns entitlements into IAM resources that are correct under API Gateway's cache:
 * an exact ARN is listed only when the route table would pick that same rule for it;
 * a wildcard ARN only when no path it covers belongs to a rule (or binding) the
 * principal may not use. What cannot be listed safely is omitted (and the live
 * request still gets its own exact ARN).
 */
export function entitledResources(
  policy: CompiledPolicy,
  entitlements: readonly Entitlement[],
  arn: MethodArn,
): { resources: string[]; omitted: string[] } {
  const byRule = new Map(entitlements.map((e) => [e.rule, e]));
  const idx = globIndex(policy);
  const resources: string[] = [];
  const omitted: string[] = [];
  for (const e of entitlements) {
    if (e.bindings.length === 0) continue;
    const parsed = idx.byRule.get(e.rule)?.parsed;
    if (!parsed) continue;
    for (const b of e.bindings) {
      const paths = ruleArnPaths(parsed, b);
      if (!paths) {
        omitted.push(e.rule.route);
        continue;
      }
      for (const built of paths) {
        if (!built.wildcard) {
          const concrete = built.path.slice(built.path.indexOf('/'));
          const m = policy.table.match(built.method, concrete);
          if (m?.rule !== e.rule) {
            omitted.push(e.rule.route);
            continue;
          }
        } else if (!wildcardSafe(iamGlob(built.path), e.rule, idx, byRule)) {
          omitted.push(e.rule.route);
          continue;
        }
        resources.push(`${arn.prefix}/${built.path}`);
      }
    }
  }
  return { resources: [...new Set(resources)], omitted: [...new Set(omitted)] };
}

function wildcardSafe(glob: GlobElement[], self: RouteRule, idx: GlobIndex, byRule: Map<RouteRule, Entitlement>): boolean {
  const a = atoms(glob);
  for (const entry of candidates(idx, leadingLiteral(glob))) {
    if (entry.rule === self) continue;
    const ent = byRule.get(entry.rule);
    if (ent?.full) continue;
    if (!atomsIntersect(a, entry.atoms)) continue;
    if (!ent || ent.bindings.length === 0) return false;
    // Partially entitled: the glob may only reach bindings the principal holds.
    for (const p of entry.bound) {
      if (atomsIntersect(a, atoms(ruleGlob(entry.parsed, { [p]: SENTINEL }, false)))) return false;
    }
    if (!ent.bindings.some((b) => atomsIntersect(a, atoms(ruleGlob(entry.parsed, b, false))))) return false;
  }
  return true;
}

import { LruCache } from '../cache/lru';
import type { Logger } from '../log';
import { compileExpression, loadExpressionEngine, type CompiledExpression } from '../policy/expression';
import { compileRouteTable, parseRouteKey, type RouteRule, type RouteTable } from '../policy/routes';
import { sha256Base64url } from '../identity/digest';
import { RoleCatalog } from '../rbac/catalog';
import type { Principal } from '../rbac/types';
import type { AuthorizerStore, PolicySnapshot } from '../store/types';

/** An expression slot: compiled, or invalid (which never allows). */
export type ExpressionSlot = { ok: true; compiled: CompiledExpression } | { ok: false; error: string };

/** What decisions under a policy read of a principal besides its kind, roles and token (beyond the gate and role decision). */
export interface PrincipalReads {
  /** Its id: an owner binding, or an expression reading `principal.id` (or `principal` whole). */
  id: boolean;
  /** `principal.email` / `principal.emailVerified`. */
  email: boolean;
  /** `principal.groups`. */
  groups: boolean;
  /** `principal.claims`: claims differ per token (iat, jti), so answers that read them are per credential. */
  claims: boolean;
  /** `request.headers.authorization`: the credential itself (the identity source), so answers are per credential. */
  credential: boolean;
}

/**
 * What decisions under `policy` read of `principal`, as a key: its kind, site roles and
 * memberships, its token's kind, org and scopes (never the token's id: tokens alike
 * decide alike, core/rbac/decide.ts), and its id, email, groups or claims only when the
 * policy reads them (`principalReads`; claims as a digest: they differ per token).
 * Principals equal in it get equal decisions under the policy, for the same request, so
 * decisions (`SharedDecisions`) and IAM statements (`IamAnswers`) are shared under it.
 * The credential itself is not in it: statements that read it are keyed by it as well.
 */
export function principalClass(policy: CompiledPolicy, p: Principal): string {
  const reads = policy.principalReads;
  let key = `${p.kind}\u0000${JSON.stringify(p.siteRoles)}\u0000${JSON.stringify(p.orgs)}`;
  if (p.token) key += `\u0000token:${p.token.kind}:${p.token.orgId ?? ''}:${JSON.stringify(p.token.scopes ?? null)}`;
  if (reads.id) key += `\u0000id:${p.id}`;
  if (reads.email) key += `\u0000email:${p.email ?? ''}:${p.emailVerified === true}`;
  if (reads.groups) key += `\u0000groups:${JSON.stringify(p.groups ?? null)}`;
  if (reads.claims) key += `\u0000claims:${sha256Base64url(JSON.stringify(p.claims ?? null))}`;
  return key;
}

/** A policy snapshot indexed once per version: route table, role catalog, compiled expressions. */
export interface CompiledPolicy {
  /** The policy set it is a version of. */
  set: string;
  version: string;
  table: RouteTable;
  catalog: RoleCatalog;
  gate?: ExpressionSlot;
  /** Compiled route conditions, by rule object. */
  conditions: Map<RouteRule, ExpressionSlot>;
  /** What of a principal a decision under this policy may depend on (answers are shared by principals equal in it). */
  principalReads: PrincipalReads;
  /** Orgs being deleted: memberships in them and their org tokens grant nothing (`withoutDeletingOrgs`). */
  deletingOrgIds: ReadonlySet<string>;
  /** The set's candidate in shadow mode (DESIGN §9): decided beside the set, never answering. */
  candidate?: CompiledCandidate;
  /**
   * True when a decision under this policy is fixed by the principal and the method ARN
   * alone: no expression reads the request beyond its method, path and path parameters
   * (which the ARN holds), nor `now`, and no candidate is being shadowed (it must see
   * every request). Then a repeated request may get the answer already given to it.
   */
  repeatable: boolean;
}

/** A compiled policy and until when it may be used without checking the store again (ms). */
export interface FreshPolicy {
  policy: CompiledPolicy;
  freshUntilMs: number;
}

/** A candidate compiled like its set (same roles), or broken: only the shadow path ever sees it. */
export interface CompiledCandidate {
  candidate: number;
  basedOn: number;
  policy?: CompiledPolicy;
  /** Why it could not be compiled (the shadow path counts a failure for each request). */
  broken?: string;
}

function slot(text: string): ExpressionSlot {
  try {
    return { ok: true, compiled: compileExpression(text) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/**
 * Whether compiling `snapshot` compiles an expression: a rule's condition or the gate, of
 * the set or of its candidate. Only then must jexl be loaded first (core/policy/expression.ts).
 */
export function holdsExpressions(snapshot: PolicySnapshot): boolean {
  const conditioned = (routes: unknown) => Array.isArray(routes) && routes.some((r: unknown) => typeof (r as { condition?: unknown } | null)?.condition === 'string');
  const c = snapshot.candidate;
  return typeof snapshot.gate === 'string' || conditioned(snapshot.routes) || (c !== undefined && (typeof c.gate === 'string' || conditioned(c.routes)));
}

/**
 * Compiles a snapshot. Policies are validated when written and again here: a route
 * whose key no longer parses is dropped (it could only ever grant); a condition or
 * gate that no longer validates is kept as "invalid", which denies, so a broken rule
 * can never let a less specific rule take over.
 */
export function compilePolicy(snapshot: PolicySnapshot, logger?: Logger): CompiledPolicy {
  const rules: RouteRule[] = [];
  const conditions = new Map<RouteRule, ExpressionSlot>();
  for (const rule of snapshot.routes) {
    try {
      if (!rule || typeof rule !== 'object' || typeof rule.route !== 'string') throw new Error('not a route rule');
      parseRouteKey(rule.route);
    } catch (err) {
      logger?.warn('policy.route-dropped', { reason: 'invalid-route', version: snapshot.version, message: (err as Error).message });
      continue;
    }
    rules.push(rule);
    if (typeof rule.condition === 'string') {
      const s = slot(rule.condition);
      if (!s.ok) logger?.warn('policy.condition-invalid', { route: rule.route, version: snapshot.version, message: s.error });
      conditions.set(rule, s);
    } else if (rule.condition !== undefined) {
      conditions.set(rule, { ok: false, error: 'condition is not a string' });
    }
  }
  let table: RouteTable;
  try {
    table = compileRouteTable(rules);
  } catch (err) {
    // Duplicate or conflicting rules at load time: fail closed with an empty table.
    logger?.error('policy.table-invalid', { version: snapshot.version, message: (err as Error).message });
    table = compileRouteTable([]);
  }
  const gate = snapshot.gate !== undefined ? slot(snapshot.gate) : undefined;
  if (gate && !gate.ok) logger?.warn('policy.gate-invalid', { version: snapshot.version, message: gate.error });
  const slots = [...conditions.values(), ...(gate ? [gate] : [])];
  // An invalid expression reads nothing: it denies, whoever asks.
  const reads = slots.flatMap((x) => (x.ok ? x.compiled.reads : []));
  const reading = (...prefixes: string[]) => reads.some((r) => r === 'principal' || prefixes.some((p) => r === p || r.startsWith(`${p}.`)));
  const principalReads: PrincipalReads = {
    id: rules.some((r) => r.owner !== undefined) || reading('principal.id'),
    email: reading('principal.email', 'principal.emailVerified'),
    groups: reading('principal.groups'),
    claims: reading('principal.claims'),
    credential: reads.some((r) => r === 'request' || r === 'request.headers' || r === 'request.headers.authorization' || r.startsWith('request.headers.authorization.')),
  };
  const candidate = snapshot.candidate ? compileCandidate(snapshot, snapshot.candidate, logger) : undefined;
  return {
    set: snapshot.set ?? DEFAULT_SET,
    version: snapshot.version,
    table,
    catalog: new RoleCatalog(snapshot.roles),
    ...(gate ? { gate } : {}),
    conditions,
    principalReads,
    deletingOrgIds: new Set(snapshot.deletingOrgIds ?? []),
    ...(candidate ? { candidate } : {}),
    // An invalid expression denies whatever the request: it is fixed too.
    repeatable: candidate === undefined && slots.every((x) => !x.ok || x.compiled.fixedByRoute),
  };
}

/** A candidate with its set's roles; whatever goes wrong stays with the candidate, never the set. */
function compileCandidate(set: PolicySnapshot, c: NonNullable<PolicySnapshot['candidate']>, logger?: Logger): CompiledCandidate {
  const version = `${set.version}~candidate`;
  try {
    if (!Array.isArray(c.routes)) throw new Error('its route table is not a list');
    // The set's roles and deleting orgs; the candidate's own routes and gate.
    const { candidate: _c, gate: _g, ...shared } = set;
    return { candidate: c.candidate, basedOn: c.basedOn, policy: compilePolicy({ ...shared, version, routes: c.routes, ...(c.gate !== undefined ? { gate: c.gate } : {}) }, logger) };
  } catch (err) {
    logger?.warn('shadow.candidate-broken', { policySet: set.set ?? DEFAULT_SET, candidate: c.candidate, message: (err as Error).message });
    return { candidate: c.candidate, basedOn: c.basedOn, broken: (err as Error).message };
  }
}

/** The set every API is decided with unless it is bound to another (or the function pins one). */
export const DEFAULT_SET = 'default';

/** Longest-lived number of policy sets one container keeps compiled. */
const MAX_SETS = 64;
const MAX_BINDINGS = 1000;

/**
 * The compiled policy a request is decided with (DESIGN §4, Policy sets): the set the
 * function pins (`GATEHOUSE_POLICY_SET`), else the set bound to the calling API, else
 * `default`. Each set is served from memory for at most `ttlSeconds`; after that one
 * small read of its version stamp decides whether to reload. Concurrent callers share
 * one load. Bindings are cached for the same TTL.
 */
export class PolicySource {
  private readonly sets = new Map<string, { policy: CompiledPolicy; checkedAtMs: number }>();
  private readonly loading = new Map<string, Promise<CompiledPolicy>>();
  private readonly bindings: LruCache<string, { set: string; checkedAtMs: number }>;

  constructor(
    private readonly deps: { store: AuthorizerStore; now: () => number; ttlSeconds: number; logger?: Logger; pinnedSet?: string },
  ) {
    this.bindings = new LruCache({ maxEntries: MAX_BINDINGS, now: deps.now });
  }

  /**
   * The policy for a request to `apiId` (the API id of its method ARN), and until when it
   * may be used: the TTL from when the set, and the API's binding, were last read.
   */
  async forApi(apiId: string | undefined): Promise<FreshPolicy> {
    const ttlMs = this.deps.ttlSeconds * 1000;
    let set = this.deps.pinnedSet ?? DEFAULT_SET;
    let freshUntilMs = Infinity;
    if (this.deps.pinnedSet === undefined && apiId !== undefined) {
      const binding = await this.bindingOf(apiId);
      set = binding.set;
      freshUntilMs = binding.checkedAtMs + ttlMs;
    }
    const policy = await this.get(set);
    // A set dropped meanwhile (more than MAX_SETS in use) is fresh for this request only.
    const checkedAtMs = this.sets.get(set)?.checkedAtMs;
    return { policy, freshUntilMs: checkedAtMs === undefined ? this.deps.now() : Math.min(freshUntilMs, checkedAtMs + ttlMs) };
  }

  /** A set's compiled policy, fresh within the TTL. */
  async get(set: string): Promise<CompiledPolicy> {
    const cur = this.sets.get(set);
    if (cur && this.deps.now() - cur.checkedAtMs < this.deps.ttlSeconds * 1000) return cur.policy;
    let pending = this.loading.get(set);
    if (!pending) {
      pending = this.refresh(set).finally(() => this.loading.delete(set));
      this.loading.set(set, pending);
    }
    return pending;
  }

  private async bindingOf(apiId: string): Promise<{ set: string; checkedAtMs: number }> {
    const cached = this.bindings.get(apiId);
    if (cached !== undefined) return cached;
    const checkedAtMs = this.deps.now();
    const binding = { set: (await this.deps.store.getApiBinding?.(apiId)) ?? DEFAULT_SET, checkedAtMs };
    this.bindings.set(apiId, binding, this.deps.ttlSeconds * 1000);
    return binding;
  }

  private async refresh(set: string): Promise<CompiledPolicy> {
    const cur = this.sets.get(set);
    const checkedAtMs = this.deps.now();
    if (cur && (await this.deps.store.getPolicyVersion(set)) === cur.policy.version) {
      this.remember(set, cur.policy, checkedAtMs);
      return cur.policy;
    }
    const snapshot = { ...(await this.deps.store.loadPolicy(set)), set };
    if (holdsExpressions(snapshot)) await loadExpressionEngine();
    const policy = compilePolicy(snapshot, this.deps.logger);
    this.remember(set, policy, checkedAtMs);
    return policy;
  }

  /** `checkedAtMs`: when the store was asked (before the read), so freshness is never overstated. */
  private remember(set: string, policy: CompiledPolicy, checkedAtMs: number): void {
    if (!this.sets.has(set) && this.sets.size >= MAX_SETS) this.sets.clear();
    this.sets.set(set, { policy, checkedAtMs });
  }

  /** Drops every compiled set and binding (tests, benchmarks). */
  invalidate(): void {
    this.sets.clear();
    this.bindings.clear();
  }
}

import type { Logger } from '../log';
import { compileExpression, type CompiledExpression } from '../policy/expression';
import { compileRouteTable, parseRouteKey, type RouteRule, type RouteTable } from '../policy/routes';
import { RoleCatalog } from '../rbac/catalog';
import type { AuthorizerStore, PolicySnapshot } from '../store/types';

/** An expression slot: compiled, or invalid (which never allows). */
export type ExpressionSlot = { ok: true; compiled: CompiledExpression } | { ok: false; error: string };

/** A policy snapshot indexed once per version: route table, role catalog, compiled expressions. */
export interface CompiledPolicy {
  version: string;
  table: RouteTable;
  catalog: RoleCatalog;
  gate?: ExpressionSlot;
  /** Compiled route conditions, by rule object. */
  conditions: Map<RouteRule, ExpressionSlot>;
  /** True when some expression reads `principal.claims` (or `principal` whole): claims then shape decisions. */
  readsClaims: boolean;
  /** True when some expression reads the Authorization header itself. */
  readsCredential: boolean;
  /**
   * True when no expression depends on time or on request data outside the cache key:
   * a decision is then a pure function of (credential, method, path) for the TTL.
   */
  requestIndependent: boolean;
  /** Orgs being deleted: memberships in them and their org tokens grant nothing (`withoutDeletingOrgs`). */
  deletingOrgIds: ReadonlySet<string>;
}

function slot(text: string): ExpressionSlot {
  try {
    return { ok: true, compiled: compileExpression(text) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
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
  const readsClaims = slots.some((x) => !x.ok || x.compiled.reads.some((r) => r === 'principal' || r.startsWith('principal.claims')));
  const readsCredential = slots.some((x) => !x.ok || x.compiled.reads.some((r) => r === 'request.headers.authorization'));
  const requestIndependent = slots.every((x) => x.ok && !x.compiled.timeDependent && !x.compiled.readsUncachedRequestData);
  return { version: snapshot.version, table, catalog: new RoleCatalog(snapshot.roles), ...(gate ? { gate } : {}), conditions, readsClaims, readsCredential, requestIndependent, deletingOrgIds: new Set(snapshot.deletingOrgIds ?? []) };
}

/**
 * Serves the compiled policy from memory for at most `ttlSeconds`; after that one
 * small read of the version stamp decides whether to reload. Concurrent callers
 * share one load.
 */
export class PolicyCache {
  private current?: { policy: CompiledPolicy; checkedAtMs: number };
  private inflight?: Promise<CompiledPolicy>;

  constructor(
    private readonly deps: { store: AuthorizerStore; now: () => number; ttlSeconds: number; logger?: Logger },
  ) {}

  async get(): Promise<CompiledPolicy> {
    return this.fresh() ?? this.load();
  }

  /** The policy in memory while it is fresh, without waiting (the warm path of every decision). */
  fresh(): CompiledPolicy | undefined {
    const cur = this.current;
    return cur && this.deps.now() - cur.checkedAtMs < this.deps.ttlSeconds * 1000 ? cur.policy : undefined;
  }

  /** Checks the version (and reloads when it changed); concurrent callers share one load. */
  load(): Promise<CompiledPolicy> {
    this.inflight ??= this.refresh().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async refresh(): Promise<CompiledPolicy> {
    const cur = this.current;
    if (cur) {
      const version = await this.deps.store.getPolicyVersion();
      if (version === cur.policy.version) {
        this.current = { policy: cur.policy, checkedAtMs: this.deps.now() };
        return cur.policy;
      }
    }
    const snapshot = await this.deps.store.loadPolicy();
    const policy = compilePolicy(snapshot, this.deps.logger);
    this.current = { policy, checkedAtMs: this.deps.now() };
    return policy;
  }

  /** Until when the policy now in memory may be served without a check (ms). */
  freshUntilMs(): number {
    return this.current ? this.current.checkedAtMs + this.deps.ttlSeconds * 1000 : 0;
  }

  /** Drops the cached policy (tests, and after a local write). */
  invalidate(): void {
    this.current = undefined;
  }
}

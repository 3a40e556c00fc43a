import type { Logger } from '../log';
import type { Principal } from '../rbac/types';
import type { AuthorizerStore, ShadowAggregate, ShadowDifference, ShadowExample, ShadowOutcome } from '../store/types';
import { decide, type Decision, type DecisionRequest } from './decide';
import type { CompiledPolicy } from './policy';

/** Least time between two flushes of one container's counts. */
export const SHADOW_FLUSH_INTERVAL_MS = 60_000;
/** Most kinds of difference one container breaks down per candidate and flush; more are counted, not broken down. */
export const MAX_SHADOW_KINDS = 50;
/** Most examples one container keeps per candidate and flush (one per kind of difference). */
export const MAX_SHADOW_EXAMPLES = 10;
/** Most candidates one container counts for at once (one per policy set it decides with). */
const MAX_CANDIDATES = 16;
/** Longest path an example keeps. */
const MAX_EXAMPLE_PATH = 256;

export interface ShadowOptions {
  store: Pick<AuthorizerStore, 'recordShadow'>;
  logger: Logger;
  /** Milliseconds since the epoch. */
  now: () => number;
  flushIntervalMs?: number;
  maxKinds?: number;
  maxExamples?: number;
}

/** What one container counted for one candidate since its last flush. */
interface Pending extends ShadowAggregate {
  kinds: Map<string, ShadowDifference>;
  failureLogged: boolean;
}

/**
 * Shadow mode (DESIGN §9): while a policy set has a candidate, every request decided with
 * the set is decided by the candidate too — same principal, same request, the same
 * `decide()` — and how the two compare is counted. The candidate never answers: this
 * class returns nothing to the decision, and whatever fails in it is caught, counted and
 * logged.
 *
 * Counts stay in the container and go to the store at most once per flush interval,
 * piggybacking on an invocation (`flushDue()` at its start: Lambda runs no timers), like
 * token activity. Every request compared is counted in the totals (compared, differing,
 * failed); differences are broken down by kind — the rules each side matched and both
 * outcomes — up to `maxKinds` kinds per flush (the rest only in the totals), with at most
 * `maxExamples` examples, one per kind. An example holds the principal id, method, path
 * and both reason codes: never a credential. So a flush costs at most
 * `2 + maxKinds` writes per candidate, whatever the traffic.
 */
export class ShadowDecisions {
  private readonly pending = new Map<string, Pending>();
  /** When the oldest unflushed count was taken (undefined: nothing waits). */
  private windowStartMs: number | undefined;
  private readonly intervalMs: number;
  private readonly maxKinds: number;
  private readonly maxExamples: number;

  constructor(private readonly deps: ShadowOptions) {
    this.intervalMs = deps.flushIntervalMs ?? SHADOW_FLUSH_INTERVAL_MS;
    this.maxKinds = deps.maxKinds ?? MAX_SHADOW_KINDS;
    this.maxExamples = deps.maxExamples ?? MAX_SHADOW_EXAMPLES;
  }

  /** Decides `request` with the policy's candidate too (when it has one) and counts how the two compare. Never throws. */
  compare(policy: CompiledPolicy, principal: Principal | undefined, request: DecisionRequest, live: Decision, nowMs: number): void {
    const c = policy.candidate;
    if (!c) return;
    const p = this.counter(policy.set, c.candidate);
    if (!p) return;
    try {
      if (!c.policy) throw new Error(`candidate does not compile: ${c.broken ?? 'unknown'}`);
      const shadow = decide(c.policy, principal, request, nowMs);
      const liveOutcome = outcomeOf(live, principal);
      const candidateOutcome = outcomeOf(shadow, principal);
      p.compared++;
      if (liveOutcome === candidateOutcome) return;
      p.differing++;
      const kind: Omit<ShadowDifference, 'count'> = { route: live.route ?? null, candidateRoute: shadow.route ?? null, live: liveOutcome, candidate: candidateOutcome };
      const key = `${kind.route}\u0000${kind.candidateRoute}\u0000${kind.live}\u0000${kind.candidate}`;
      const known = p.kinds.get(key);
      if (known) {
        known.count++;
        return;
      }
      if (p.kinds.size >= this.maxKinds) {
        p.unkeyed++;
        return;
      }
      p.kinds.set(key, { ...kind, count: 1 });
      if (p.examples.length < this.maxExamples) p.examples.push(example(principal, request, kind, live, shadow, nowMs));
    } catch (err) {
      p.failed++;
      if (!p.failureLogged) {
        p.failureLogged = true;
        this.deps.logger.warn('shadow.failed', { policySet: policy.set, candidate: c.candidate, reason: (err as Error)?.name ?? 'unknown', message: String((err as Error)?.message ?? '').slice(0, 200) });
      }
    }
  }

  /** Flushes when the oldest waiting count is a flush interval old (at the start of an invocation). Never rejects. */
  async flushDue(): Promise<void> {
    if (this.windowStartMs !== undefined && this.deps.now() - this.windowStartMs >= this.intervalMs) await this.flush();
  }

  /** Writes every candidate's waiting counts now (tests, benchmarks). A failed write is logged and its counts dropped. Never rejects. */
  async flush(): Promise<void> {
    const batch = [...this.pending.values()];
    this.pending.clear();
    this.windowStartMs = undefined;
    const nowS = Math.floor(this.deps.now() / 1000);
    await Promise.all(
      batch.map(async (p) => {
        const { kinds, failureLogged: _, ...aggregate } = p;
        aggregate.differences = [...kinds.values()];
        const fields = { policySet: p.set, candidate: p.candidate, compared: p.compared, differing: p.differing, failed: p.failed };
        try {
          const writes = await this.deps.store.recordShadow(aggregate, nowS);
          this.deps.logger.info('shadow.flushed', { ...fields, writes });
        } catch (err) {
          this.deps.logger.warn('shadow.flush-failed', { ...fields, reason: (err as { code?: string })?.code ?? 'unknown' });
        }
      }),
    );
  }

  /** The counter of a candidate, opening the flush window with the first count; undefined beyond the cap on candidates. */
  private counter(set: string, candidate: number): Pending | undefined {
    const key = `${set}\u0000${candidate}`;
    let p = this.pending.get(key);
    if (p) return p;
    if (this.pending.size >= MAX_CANDIDATES) return undefined;
    p = { set, candidate, compared: 0, differing: 0, failed: 0, unkeyed: 0, differences: [], examples: [], kinds: new Map(), failureLogged: false };
    this.pending.set(key, p);
    this.windowStartMs ??= this.deps.now();
    return p;
  }
}

/** What API Gateway would have been answered: without a credential, anything but an allow is a 401 (as `Authorizer`). */
function outcomeOf(d: Decision, principal: Principal | undefined): ShadowOutcome {
  if (d.allowed) return 'allow';
  return principal ? 'deny' : 'unauthorized';
}

function example(principal: Principal | undefined, request: DecisionRequest, kind: Omit<ShadowDifference, 'count'>, live: Decision, shadow: Decision, nowMs: number): ShadowExample {
  return {
    at: Math.floor(nowMs / 1000),
    principalId: principal?.id ?? 'anonymous',
    method: request.method,
    path: request.path.slice(0, MAX_EXAMPLE_PATH),
    route: kind.route,
    candidateRoute: kind.candidateRoute,
    live: { outcome: kind.live, code: live.code },
    candidate: { outcome: kind.candidate, code: shadow.code },
  };
}

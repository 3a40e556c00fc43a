import { BoundedValues, denyClass, flavourOf, outcomeOf, unauthorizedClass, type Outcome } from './classes';
import { dimensionSets, MetricSet, type Dimensions } from './emf';

/** The CloudWatch namespace of every gatehouse metric. */
export const NAMESPACE = 'Gatehouse';

/** One cache's counters since it was built (cumulative; the recorder publishes the differences). */
export interface CacheCounter {
  name: string;
  hits: number;
  misses: number;
}

/** Anything that can report its caches' counters (the authorizer, a gateway handler). */
export interface CacheCounterSource {
  cacheCounters(): readonly CacheCounter[];
}

/** Every metric gatehouse writes (docs/operations.md describes each; the alarms and dashboard use them). */
export const METRIC_NAMES = [
  'Decisions', 'Unauthorized', 'Denies', 'FailClosed', 'KeySetFailures', 'KeySetFetches', 'AnswersCutToRoute',
  'ApiFailures', 'CacheHits', 'CacheMisses', 'DynamoDbLatency', 'DynamoDbThrottles', 'DynamoDbErrors',
] as const;

/** Where the events a metric is derived from come from: the log event names and their fields. */
export const METRIC_EVENTS = {
  decision: 'authorizer.decision',
  failClosed: 'authorizer.fail-closed',
  policyTooLarge: 'authorizer.policy-too-large',
  apiFailed: ['tokens.failed', 'invitations.failed', 'admin.failed'],
} as const;

/** Every family's dimension sets: its own dimensions, then roll-ups down to `FunctionName` (what alarms watch). */
const SETS = {
  function: dimensionSets([['FunctionName']]),
  reason: dimensionSets([['FunctionName', 'Reason'], ['FunctionName']]),
  reasonClass: dimensionSets([['FunctionName', 'ReasonClass'], ['FunctionName']]),
  decision: dimensionSets([['FunctionName', 'Flavour', 'Outcome'], ['FunctionName', 'Outcome'], ['FunctionName']]),
  cache: dimensionSets([['FunctionName', 'Cache']]),
};

export interface MetricsOptions {
  /** The `FunctionName` dimension on every metric (Lambda's function name). */
  functionName: string;
  now: () => number;
  /** Writes one EMF document (the caller wraps it in a log line). */
  write: (document: Record<string, unknown>) => void;
  namespace?: string;
  /** Least time between two publications of cache counters (they add a document each). Default 60 s. */
  cacheFlushMs?: number;
}

/**
 * A container's metrics: hands out one {@link InvocationMetrics} per invocation and
 * writes its EMF documents when the invocation ends. Holds what must outlive an
 * invocation: the bounded dimension values and the cache counters already published.
 */
export class MetricsRecorder {
  readonly namespace: string;
  private readonly functionName: string;
  private readonly now: () => number;
  private readonly write: (document: Record<string, unknown>) => void;
  private readonly cacheFlushMs: number;
  /** Fail-closed and API failure reasons are codes from the one error catalogue: bounded, but open-ended. */
  readonly reasons = new BoundedValues(20);
  private readonly cacheNames = new BoundedValues(10);
  private readonly sources = new Set<CacheCounterSource>();
  private readonly published = new Map<string, { hits: number; misses: number }>();
  private lastCacheFlushMs = -Infinity;

  constructor(options: MetricsOptions) {
    this.namespace = options.namespace ?? NAMESPACE;
    this.functionName = options.functionName;
    this.now = options.now;
    this.write = options.write;
    this.cacheFlushMs = options.cacheFlushMs ?? 60_000;
  }

  /** Publishes the cache counters of `source`, if it has any (`cacheCounters()`). */
  watchCaches(source: unknown): void {
    if (source && typeof (source as Partial<CacheCounterSource>).cacheCounters === 'function') this.sources.add(source as CacheCounterSource);
  }

  /** Starts an invocation's metrics. `flavour`: the authorizer flavour when the event does not say. */
  begin(flavour?: string): InvocationMetrics {
    return new InvocationMetrics(this, [['FunctionName', this.functionName]], flavour);
  }

  /** Ends an invocation: its metrics (and the caches' counters, when due) as EMF documents, written. */
  finish(inv: InvocationMetrics): void {
    const now = this.now();
    if (this.sources.size > 0 && now - this.lastCacheFlushMs >= this.cacheFlushMs) {
      this.lastCacheFlushMs = now;
      this.cacheDeltas(inv);
    }
    for (const doc of inv.set.documents(this.namespace, now)) this.write(doc);
  }

  private cacheDeltas(inv: InvocationMetrics): void {
    const totals = new Map<string, { hits: number; misses: number }>();
    for (const source of this.sources) {
      let counters: readonly CacheCounter[];
      try {
        counters = source.cacheCounters();
      } catch {
        continue;
      }
      for (const c of counters) {
        const name = this.cacheNames.of(c.name);
        const t = totals.get(name) ?? { hits: 0, misses: 0 };
        t.hits += Number.isFinite(c.hits) ? c.hits : 0;
        t.misses += Number.isFinite(c.misses) ? c.misses : 0;
        totals.set(name, t);
      }
    }
    for (const [name, t] of totals) {
      const before = this.published.get(name) ?? { hits: 0, misses: 0 };
      // Counters only grow; smaller means a cache was rebuilt, and all of it is new.
      const hits = t.hits >= before.hits ? t.hits - before.hits : t.hits;
      const misses = t.misses >= before.misses ? t.misses - before.misses : t.misses;
      this.published.set(name, t);
      if (hits === 0 && misses === 0) continue;
      const dims = inv.dims(['Cache', name]);
      inv.set.count('CacheHits', dims, SETS.cache, hits);
      inv.set.count('CacheMisses', dims, SETS.cache, misses);
    }
  }
}

/**
 * The metrics of one invocation, fed by the log events the code already writes (a tap on
 * the logger), the SDK middleware (DynamoDB calls), the key-set fetch wrapper, and, for
 * an authorizer answer with no decision event saying its outcome, the answer itself.
 */
export class InvocationMetrics {
  readonly set = new MetricSet();
  /** Whether a decision event said the outcome. */
  private decided = false;
  /** Whether a remembered answer was served (its decision line carries no outcome). */
  private cached = false;

  constructor(
    private readonly recorder: MetricsRecorder,
    private readonly base: Dimensions,
    private readonly flavour: string | undefined,
  ) {}

  /** The base dimensions followed by `extra`. */
  dims(...extra: (readonly [string, string])[]): Dimensions {
    return [...this.base, ...extra];
  }

  /** The logger tap: counts what the events say. */
  observe(level: string, message: string, fields: Record<string, unknown> | undefined): void {
    if (message === METRIC_EVENTS.decision) {
      const outcome = outcomeOf(fields?.effect);
      if (outcome) this.decision(outcome, fields?.flavour, fields?.reason);
      else if (fields?.cached === true) this.cached = true;
    } else if (message === METRIC_EVENTS.failClosed) {
      const reason = this.recorder.reasons.of(fields?.reason);
      this.set.count('FailClosed', this.dims(['Reason', reason]), SETS.reason);
      if (typeof fields?.reason === 'string' && fields.reason.startsWith('jwks-')) {
        this.set.count('KeySetFailures', this.dims(['Reason', reason]), SETS.reason);
      }
    } else if (message === METRIC_EVENTS.policyTooLarge) {
      this.set.count('AnswersCutToRoute', this.dims(), SETS.function);
    } else if (level === 'error' && (METRIC_EVENTS.apiFailed as readonly string[]).includes(message)) {
      this.set.count('ApiFailures', this.dims(['Reason', this.recorder.reasons.of(fields?.reason)]), SETS.reason);
    }
  }

  /**
   * The outcome read from the answer (or the error thrown), counted only when no decision
   * event said it: a remembered answer's line says `cached` and nothing more.
   */
  answered(outcome: Outcome): void {
    if (this.decided) return;
    this.decision(outcome, undefined, undefined, this.cached ? 'cached' : 'other');
  }

  /** One request sent to an issuer's key-set endpoint. */
  keySetFetch(): void {
    this.set.count('KeySetFetches', this.dims(), SETS.function);
  }

  /** One DynamoDB call as the function saw it (retries included); `error`: the SDK error's name. */
  dynamoCall(ms: number, error?: string): void {
    this.set.sample('DynamoDbLatency', 'Milliseconds', this.dims(), SETS.function, Math.round(ms * 1000) / 1000);
    if (error === undefined) return;
    const throttled = error === 'ThrottlingException' || error === 'ProvisionedThroughputExceededException' || error === 'RequestLimitExceeded';
    this.set.count(throttled ? 'DynamoDbThrottles' : 'DynamoDbErrors', this.dims(), SETS.function);
  }

  private decision(outcome: Outcome, flavour: unknown, reason: unknown, fallbackClass?: string): void {
    this.decided = true;
    const f = flavourOf(flavour ?? this.flavour);
    this.set.count('Decisions', this.dims(['Flavour', f], ['Outcome', outcome]), SETS.decision);
    if (outcome === 'unauthorized') {
      this.set.count('Unauthorized', this.dims(['ReasonClass', fallbackClass ?? unauthorizedClass(reason)]), SETS.reasonClass);
    } else if (outcome === 'deny') {
      this.set.count('Denies', this.dims(['ReasonClass', fallbackClass ?? denyClass(reason)]), SETS.reasonClass);
    }
  }
}

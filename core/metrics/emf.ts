/**
 * CloudWatch embedded metric format (EMF): metrics aggregated in memory, then written as
 * JSON documents whose `_aws` envelope tells CloudWatch Logs which top-level members are
 * metrics and which are dimensions.
 */

/** CloudWatch units this code uses. */
export type MetricUnit = 'Count' | 'Milliseconds';

/** One metric's dimensions, as ordered `[name, value]` pairs (values are strings, bounded by the caller). */
export type Dimensions = readonly (readonly [string, string])[];

/** The dimension sets a metric is published under (its own dimensions, and roll-ups). Build once, with {@link dimensionSets}. */
export interface DimensionSets {
  readonly sets: readonly (readonly string[])[];
  /** Identifies the list (metrics under the same sets share a directive). */
  readonly key: string;
}

/** Declares the dimension sets of a metric family: e.g. `[['FunctionName', 'Reason'], ['FunctionName']]`. */
export function dimensionSets(sets: readonly (readonly string[])[]): DimensionSets {
  return { sets, key: JSON.stringify(sets) };
}

/** EMF's own limits: metrics per directive, values per metric, keys per dimension set. */
export const EMF_LIMITS = { metricsPerDirective: 100, valuesPerMetric: 100, keysPerDimensionSet: 9 } as const;

interface Entry {
  name: string;
  unit: MetricUnit;
  dimensions: Dimensions;
  /** Dimension sets to publish under (each a subset of `dimensions`' names: roll-ups). */
  sets: DimensionSets;
  /** A count (summed) or a list of values (each one a sample). */
  count?: number;
  values?: number[];
}

/**
 * Metrics of one invocation, aggregated: a count per (name, dimension values), and
 * value lists (latencies) of at most 100 samples each.
 */
export class MetricSet {
  private readonly entries = new Map<string, Entry>();

  /** Adds `n` to a count. `sets` lists the dimension sets it is published under (roll-ups). */
  count(name: string, dimensions: Dimensions, sets: DimensionSets, n = 1): void {
    const e = this.entry(name, 'Count', dimensions, sets);
    e.count = (e.count ?? 0) + n;
  }

  /** Records one sample (e.g. a latency); samples past the 100th of a metric are dropped. */
  sample(name: string, unit: MetricUnit, dimensions: Dimensions, sets: DimensionSets, value: number): void {
    const e = this.entry(name, unit, dimensions, sets);
    e.values ??= [];
    if (e.values.length < EMF_LIMITS.valuesPerMetric && Number.isFinite(value)) e.values.push(value);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The count recorded for (name, dimensions), for tests and the local gateway. */
  countOf(name: string, dimensions: Dimensions): number {
    return this.entries.get(key(name, dimensions))?.count ?? 0;
  }

  private entry(name: string, unit: MetricUnit, dimensions: Dimensions, sets: DimensionSets): Entry {
    const k = key(name, dimensions);
    let e = this.entries.get(k);
    if (!e) {
      e = { name, unit, dimensions, sets };
      this.entries.set(k, e);
    }
    return e;
  }

  /**
   * The EMF documents for everything recorded, as few as the format allows: one, unless
   * one metric name or one dimension name needs two values at once (a document holds
   * each top-level member once), in which case the rest goes to further documents.
   */
  documents(namespace: string, timestampMs: number): Record<string, unknown>[] {
    type Directive = { sets: DimensionSets; metrics: { Name: string; Unit: MetricUnit }[] };
    const docs: { members: Map<string, string | number | number[]>; directives: Map<string, Directive[]> }[] = [];
    for (const e of this.entries.values()) {
      const value = e.values ?? e.count;
      if (value === undefined || (Array.isArray(value) && value.length === 0)) continue;
      let doc = docs.find((d) => fits(d.members, e));
      if (!doc) {
        doc = { members: new Map(), directives: new Map() };
        docs.push(doc);
      }
      for (const [n, v] of e.dimensions) doc.members.set(n, v);
      doc.members.set(e.name, value);
      // Metrics published under the same dimension sets share a directive (up to EMF's 100).
      const list = doc.directives.get(e.sets.key) ?? [];
      doc.directives.set(e.sets.key, list);
      let directive = list[list.length - 1];
      if (!directive || directive.metrics.length >= EMF_LIMITS.metricsPerDirective) {
        directive = { sets: e.sets, metrics: [] };
        list.push(directive);
      }
      directive.metrics.push({ Name: e.name, Unit: e.unit });
    }
    return docs.map((d) => {
      const out: Record<string, unknown> = {
        _aws: {
          Timestamp: Math.floor(timestampMs),
          CloudWatchMetrics: [...d.directives.values()].flat().map((dir) => ({ Namespace: namespace, Dimensions: dir.sets.sets, Metrics: dir.metrics })),
        },
      };
      for (const [k, v] of d.members) out[k] = v;
      return out;
    });
  }
}

function key(name: string, dimensions: Dimensions): string {
  let k = name;
  for (const [n, v] of dimensions) k += `\u0000${n}\u0000${v}`;
  return k;
}

/** A document can take the entry if its metric name is free and its dimensions agree. */
function fits(members: Map<string, string | number | number[]>, e: Entry): boolean {
  if (members.has(e.name)) return false;
  for (const [n, v] of e.dimensions) {
    const have = members.get(n);
    if (have !== undefined && have !== v) return false;
  }
  return true;
}

/**
 * Checks a document against CloudWatch's embedded metric format specification (the JSON
 * schema it publishes, and the rules written beside it): an `_aws` object with an integer
 * `Timestamp` and `CloudWatchMetrics`, each directive a `Namespace`, `Dimensions` (at
 * least one set, each of at most 9 keys naming string members of the root) and `Metrics`
 * (at most 100, each naming a number or an array of at most 100 numbers on the root, with
 * a valid unit). Returns the problems found (empty: valid).
 */
const UNITS = new Set([
  'Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes', 'Bits', 'Kilobits', 'Megabits',
  'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second',
  'Bits/Second', 'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None',
]);

const name = (v: unknown) => typeof v === 'string' && v.length >= 1 && v.length <= 255;

export function emfProblems(doc: unknown): string[] {
  const problems: string[] = [];
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return ['the root is not an object'];
  const root = doc as Record<string, unknown>;
  const aws = root._aws as Record<string, unknown> | undefined;
  if (!aws || typeof aws !== 'object') return ['no _aws object'];
  if (!Number.isInteger(aws.Timestamp) || (aws.Timestamp as number) <= 0) problems.push('_aws.Timestamp is not an integer of milliseconds');
  const directives = aws.CloudWatchMetrics;
  if (!Array.isArray(directives) || directives.length === 0) return [...problems, '_aws.CloudWatchMetrics is not a non-empty array'];
  for (const [i, d] of directives.entries()) {
    const at = `CloudWatchMetrics[${i}]`;
    if (!name(d?.Namespace)) problems.push(`${at}.Namespace is not a 1..255 character string`);
    if (!Array.isArray(d?.Dimensions) || d.Dimensions.length === 0) problems.push(`${at}.Dimensions is not a non-empty array of dimension sets`);
    else
      for (const set of d.Dimensions as unknown[]) {
        if (!Array.isArray(set) || set.length > 9) problems.push(`${at}: a dimension set is not an array of at most 9 keys`);
        else for (const k of set) if (!name(k) || typeof root[k as string] !== 'string') problems.push(`${at}: dimension ${String(k)} is not a string member of the root`);
      }
    if (!Array.isArray(d?.Metrics) || d.Metrics.length > 100) problems.push(`${at}.Metrics is not an array of at most 100 definitions`);
    else
      for (const m of d.Metrics as { Name?: unknown; Unit?: unknown }[]) {
        if (!name(m?.Name)) {
          problems.push(`${at}: a metric has no valid Name`);
          continue;
        }
        if (m.Unit !== undefined && !UNITS.has(m.Unit as string)) problems.push(`${at}: ${String(m.Name)} has unit ${String(m.Unit)}`);
        const v = root[m.Name as string];
        const numeric = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
        if (!(numeric(v) || (Array.isArray(v) && v.length >= 1 && v.length <= 100 && v.every(numeric)))) problems.push(`${at}: ${String(m.Name)} is not a number or 1..100 numbers on the root`);
      }
  }
  return problems;
}

/** Metric values by name and dimensions, summed over documents: `Decisions{FunctionName=f,Outcome=allow}` -> 3. */
export function emfTotals(docs: Record<string, unknown>[]): Map<string, number> {
  const totals = new Map<string, number>();
  for (const doc of docs) {
    const aws = doc._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] };
    for (const d of aws.CloudWatchMetrics) {
      for (const m of d.Metrics) {
        const v = doc[m.Name];
        const value = Array.isArray(v) ? v.length : (v as number);
        for (const set of d.Dimensions) {
          const key = `${m.Name}{${set.map((k) => `${k}=${String(doc[k])}`).join(',')}}`;
          totals.set(key, (totals.get(key) ?? 0) + value);
        }
      }
    }
  }
  return totals;
}

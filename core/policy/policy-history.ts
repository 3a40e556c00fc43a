import { diffPolicies, type PolicyContent } from './policy-diff';

/**
 * How many versions of a set its history keeps (DESIGN §9 asks for the last 50 at least).
 * Each write deletes the entry `HISTORY_KEEP` versions back in its own transaction, so the
 * history of a set never holds more, whatever the write rate, and no sweeper is needed.
 * Entries can be large (a table near the item limit and its tests): a bound keeps a busy
 * set's partition, and what a deploy script that pushes on every commit costs, bounded.
 */
export const HISTORY_KEEP = 100;

/**
 * What made a version: `create`/`put` (`PUT /policies/sets/{set}`), `patch`, `put-routes`
 * and `put-gate` (the default set's first names), `rollback`, `promote` (a candidate made
 * live), `delete` (a tombstone: empty content), `write` (the store written directly:
 * seeds, scripts), and `baseline`: a version written before history existed, kept by
 * the first write that replaced it (who and when as its stamp said, no summary).
 */
export type HistoryAction = 'create' | 'put' | 'patch' | 'put-routes' | 'put-gate' | 'rollback' | 'promote' | 'delete' | 'write' | 'baseline';

/** Most names each list of a change summary keeps (the two versions can always be diffed whole). */
export const SUMMARY_NAMES = 20;
/** Longest name a summary keeps (route keys are at most 512 characters, test names 200). */
const NAME_CHARS = 200;

/** What a write changed, by name: route keys, whether the gate changed, test names. */
export interface ChangeSummary {
  routes: { added: string[]; removed: string[]; changed: string[] };
  gate: boolean;
  tests: { added: string[]; removed: string[]; changed: string[] };
  /** True when a list was cut at {@link SUMMARY_NAMES} names (or a name at 200 characters). */
  truncated: boolean;
}

/**
 * The summary of writing `to` over `from` (`diffPolicies`, reduced to names), bounded in
 * size whatever the change: it is stored in the history entry's small item beside the gate.
 */
export function summarizeChange(from: PolicyContent, to: PolicyContent): ChangeSummary {
  const d = diffPolicies(from, to);
  let truncated = false;
  const names = (list: string[]) => {
    if (list.length > SUMMARY_NAMES) truncated = true;
    return list.slice(0, SUMMARY_NAMES).map((n) => {
      if (n.length <= NAME_CHARS) return n;
      truncated = true;
      return `${n.slice(0, NAME_CHARS - 1)}…`;
    });
  };
  return {
    routes: { added: names(d.routes.added.map((r) => r.route)), removed: names(d.routes.removed.map((r) => r.route)), changed: names(d.routes.changed.map((c) => c.route)) },
    gate: d.gate !== undefined,
    tests: { added: names(d.tests.added), removed: names(d.tests.removed), changed: names(d.tests.changed) },
    truncated,
  };
}

/** A version number as the API takes it (`"12"` or `12`), or undefined. */
export function parseVersion(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v === 'string' && /^\d{1,15}$/.test(v)) return Number(v);
  return undefined;
}

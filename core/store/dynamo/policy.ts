import {
  BatchWriteItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  type QueryCommandOutput,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { Conflict, PreconditionFailed, StoreError } from '../../errors';
import { ADMIN_SET, DEFAULT_SET } from '../../policy/admin-set';
import type { PolicyContent } from '../../policy/policy-diff';
import { HISTORY_KEEP, summarizeChange, type ChangeSummary, type HistoryAction } from '../../policy/policy-history';
import { checkSetName, checkStoredSize, type PolicyTest } from '../../policy/policy-set';
import type { RouteRule } from '../../policy/routes';
import type { Role } from '../../rbac/types';
import { keys } from '../schema';
import type { ShadowDifference, ShadowExample, ShadowOutcome } from '../types';
import { NotFound } from '../../errors';
import { orgAliveCheck } from './org-index';
import { type Item, fromItem, guard, isConditionFailure, queryPage, toItem, transact, values } from './db';
import { keyId, MAX_STORED_EXAMPLES, parseJson, PolicyReader, stampVersion, type Key, type StoredBinding, type StoredSet } from './policy-read';

export { MAX_STORED_EXAMPLES, roleFromItem, type StoredBinding, type StoredSet } from './policy-read';

/** What a set's version stamp alone tells. */
export type SetStamp = Pick<StoredSet, 'name' | 'exists' | 'version' | 'stamp' | 'bindings' | 'updatedAt' | 'updatedBy'>;

/** A write to a set: what is given replaces what is stored (`null` clears); undefined leaves it. */
export interface SetChange {
  routes?: RouteRule[];
  gate?: string | null;
  tests?: PolicyTest[] | null;
}

/** What a write records in the set's history besides who and when (see `HistoryAction`). */
export interface HistoryNote {
  /** Default `write`: the store written directly (seeds, scripts). */
  action?: HistoryAction;
  /** For a rollback: the version whose routes and gate were written back. */
  restoredFrom?: number;
}

/** One version in a set's history (newest first in a listing). */
export interface VersionSummary {
  version: number;
  action: HistoryAction;
  updatedAt?: number;
  updatedBy?: string;
  /** What changed from the version before; absent for a `baseline`. */
  summary?: ChangeSummary;
  restoredFrom?: number;
}

/** One version whole: its summary and its content. */
export interface StoredVersion extends VersionSummary {
  routes: RouteRule[];
  gate?: string;
  tests: PolicyTest[];
}

/** A stored set in a listing. */
export interface SetSummary {
  name: string;
  version: number;
  bindings: number;
  updatedAt?: number;
  updatedBy?: string;
}

/** An API binding in a listing. */
export interface BindingSummary {
  apiId: string;
  set: string;
  version: number;
  updatedAt?: number;
  updatedBy?: string;
}

/** Sets whose API bindings are counted on their stamp: the built-in ones can never be deleted. */
const counted = (set: string | undefined): set is string => set !== undefined && set !== DEFAULT_SET && set !== ADMIN_SET;

/**
 * Policy storage: the role catalog in the `POLICY` partition (custom roles, `VERSION`
 * stamp bumped by every role write), one partition per policy set (`POLICYSET#<set>`:
 * `VERSION`, `ROUTES`, `GATE`, `TESTS`), and API bindings (`APIBINDING#<apiId>`).
 * Every set write is one transaction that moves the set's stamp on, conditioned on the
 * version it was read at. Readers take the stamps first and the content after, so a
 * snapshot's version is never newer than its content: a write in between only makes
 * the next version check reload.
 */
export class PolicyRepo extends PolicyReader {
  /** A set's version stamp alone (one GetItem): whether it exists, its version and bindings. */
  async readStamp(name: string): Promise<SetStamp> {
    checkSetName(name);
    const s = this.assemble(name, await this.getItem('policy set version', this.stampKey(name)), new Map());
    return { name, exists: s.exists, version: s.version, stamp: s.stamp, bindings: s.bindings, ...(s.updatedAt !== undefined ? { updatedAt: s.updatedAt } : {}), ...(s.updatedBy !== undefined ? { updatedBy: s.updatedBy } : {}) };
  }

  /** A set as stored (tests included), for the admin API: its stamp, then its content. */
  async readSet(name: string): Promise<StoredSet> {
    checkSetName(name);
    const stamp = await this.getItem('policy set version', this.stampKey(name));
    return this.assemble(name, stamp, await this.batchGet('policy set', this.contentKeys(name, true)));
  }

  /**
   * Writes a set in one transaction, conditioned on the stamp `base` was read at, and
   * returns the new version; 412 `version-mismatch` when anyone wrote it since. A new set,
   * and the default set's first write (out of the old layout), write every item.
   */
  async writeSet(base: StoredSet, change: SetChange, now: number, actor?: string, note: HistoryNote = {}): Promise<number> {
    const full = base.legacy || !base.exists || base.stamp === 'none';
    const routes = change.routes ?? (full ? base.routes : undefined);
    const gate = change.gate !== undefined ? change.gate : full ? (base.gate ?? null) : undefined;
    const tests = change.tests !== undefined ? change.tests : full ? base.tests : undefined;
    if (routes) checkStoredSize('routes', routes);
    if (tests) checkStoredSize('tests', tests);
    const next = base.version + 1;
    const pk = keys.policySet(base.name);
    const items: TransactWriteItem[] = [this.stampWrite(base, next, now, actor)];
    if (routes !== undefined) items.push(this.put({ pk, sk: keys.routesSk(), type: 'policy-routes', routes, updatedAt: now }));
    if (gate !== undefined) items.push(gate === null ? this.del([pk, keys.gateSk()]) : this.put({ pk, sk: keys.gateSk(), type: 'policy-gate', expression: gate, updatedAt: now }));
    // Tests are free-form JSON (principals, requests): kept as text, so nothing in them meets
    // DynamoDB's own limits on nesting and numbers.
    if (tests !== undefined) items.push(tests === null || tests.length === 0 ? this.del([pk, keys.testsSk()]) : this.put({ pk, sk: keys.testsSk(), type: 'policy-tests', tests: JSON.stringify(tests), updatedAt: now }));
    // The first write of the default set moves it out of the old layout: the old items go
    // in the same transaction, so no reader ever sees both (or neither).
    if (base.legacy) items.push(this.del([keys.policy(), keys.routesSk()]), this.del([keys.policy(), keys.gateSk()]));
    const after: PolicyContent = {
      routes: change.routes ?? base.routes,
      gate: change.gate !== undefined ? change.gate : (base.gate ?? null),
      tests: change.tests !== undefined ? (change.tests ?? []) : base.tests,
    };
    items.push(...this.historyWrites(base, after, next, now, actor, note));
    if (await transact(this.db, 'TransactWriteItems policy set', items)) throw mismatch(base.name);
    return next;
  }

  /** Deletes a set (leaving a tombstone stamp, so versions are never reused); 409 while an API is bound to it. */
  async deleteSet(base: StoredSet, now: number, actor?: string): Promise<void> {
    const pk = keys.policySet(base.name);
    const items: TransactWriteItem[] = [
      {
        Update: {
          TableName: this.db.tableName,
          Key: toItem({ pk, sk: keys.versionSk() }),
          UpdateExpression: 'SET #v = :next, #d = :yes, #h = :next, updatedAt = :now, updatedBy = :by REMOVE gsi1pk, gsi1sk, candidate',
          // Only the version that was read (the caller read it live), and only while no
          // API is bound to it: a binding moves `bindings` in its own transaction on this
          // same item, so a binding and a deletion never both succeed.
          ConditionExpression: '#v = :expected AND (attribute_not_exists(#b) OR #b = :zero)',
          ExpressionAttributeNames: { '#v': 'version', '#d': 'deleted', '#b': 'bindings', '#h': 'historyVersion' },
          ExpressionAttributeValues: values({ ':next': base.version + 1, ':yes': true, ':now': now, ':by': actor ?? 'system', ':expected': base.version, ':zero': 0 }),
        },
      },
      this.del([pk, keys.routesSk()]),
      this.del([pk, keys.gateSk()]),
      this.del([pk, keys.testsSk()]),
      // A candidate (shadow mode) goes with its set.
      this.del([pk, keys.candidateSk()]),
      this.del([pk, keys.candidateTestsSk()]),
      ...this.historyWrites(base, { routes: [], gate: null, tests: [] }, base.version + 1, now, actor, { action: 'delete' }),
    ];
    if (!(await transact(this.db, 'TransactWriteItems delete policy set', items))) return;
    const now2 = await this.readSet(base.name);
    if (now2.stamp === 'live' && now2.version === base.version && now2.bindings > 0) throw inUse(base.name, now2.bindings);
    throw mismatch(base.name);
  }

  /** Stored sets but `default`, by name (GSI1, eventually consistent). */
  async listSets(page: { limit: number; cursor?: string }): Promise<{ items: SetSummary[]; nextCursor?: string }> {
    return queryPage(
      this.db,
      'Query policy sets',
      { index: 'gsi1', partition: { name: 'gsi1pk', value: keys.allPolicySets() }, limit: page.limit, ...(page.cursor ? { cursor: page.cursor } : {}) },
      (i) => (typeof i.name === 'string' && i.deleted !== true ? summary(i) : undefined),
    );
  }

  /**
   * Binds an API to `set` (conditioned on the binding's version as read) and moves the
   * sets' binding counts in the same transaction. 412 when the binding changed meanwhile,
   * 409 `unknown-set` when the set does not exist (or was deleted meanwhile).
   */
  async putBinding(base: StoredBinding, set: string, now: number, actor?: string): Promise<number> {
    const next = base.version + 1;
    const items: TransactWriteItem[] = [
      {
        Update: {
          TableName: this.db.tableName,
          Key: toItem({ pk: keys.apiBinding(base.apiId), sk: keys.apiBindingSk() }),
          UpdateExpression: 'SET #s = :set, #v = :next, #t = :type, apiId = :api, gsi1pk = :g, gsi1sk = :api, updatedAt = :now, updatedBy = :by REMOVE #d',
          ...stampCondition(base),
          ExpressionAttributeNames: { '#s': 'set', '#v': 'version', '#t': 'type', '#d': 'deleted' },
          ExpressionAttributeValues: values({ ':set': set, ':next': next, ':type': 'api-binding', ':api': base.apiId, ':g': keys.allApiBindings(), ':now': now, ':by': actor ?? 'system', ...stampValues(base) }),
        },
      },
    ];
    const old = base.exists ? base.set : undefined;
    const addsTo = old !== set && counted(set);
    if (addsTo) items.push(this.countBinding(set, 1));
    if (old !== set && counted(old)) items.push(this.countBinding(old, -1));
    const failed = await transact(this.db, 'TransactWriteItems api binding', items);
    if (!failed) return next;
    if (failed.has(0)) throw new PreconditionFailed('version-mismatch', `the binding of API ${base.apiId} changed meanwhile: read it again`);
    if (addsTo && failed.has(1)) throw new Conflict('unknown-set', `policy set ${set} does not exist`);
    throw new Conflict('binding-changed', `the set API ${base.apiId} was bound to changed meanwhile: read the binding again`);
  }

  /** Unbinds an API (a tombstone keeps its version counting), conditioned on the version read. */
  async deleteBinding(base: StoredBinding, now: number, actor?: string): Promise<void> {
    const items: TransactWriteItem[] = [
      {
        Update: {
          TableName: this.db.tableName,
          Key: toItem({ pk: keys.apiBinding(base.apiId), sk: keys.apiBindingSk() }),
          UpdateExpression: 'SET #v = :next, #d = :yes, updatedAt = :now, updatedBy = :by REMOVE gsi1pk, gsi1sk, #s',
          ...stampCondition(base),
          ExpressionAttributeNames: { '#s': 'set', '#v': 'version', '#d': 'deleted' },
          ExpressionAttributeValues: values({ ':next': base.version + 1, ':yes': true, ':now': now, ':by': actor ?? 'system', ...stampValues(base) }),
        },
      },
    ];
    if (counted(base.set)) items.push(this.countBinding(base.set, -1));
    const failed = await transact(this.db, 'TransactWriteItems delete api binding', items);
    if (!failed) return;
    if (failed.has(0)) throw new PreconditionFailed('version-mismatch', `the binding of API ${base.apiId} changed meanwhile: read it again`);
    throw new Conflict('binding-changed', `the set API ${base.apiId} was bound to changed meanwhile: read the binding again`);
  }

  /** Every API binding, by API id (GSI1, eventually consistent). */
  async listBindings(page: { limit: number; cursor?: string }): Promise<{ items: BindingSummary[]; nextCursor?: string }> {
    return queryPage(
      this.db,
      'Query api bindings',
      { index: 'gsi1', partition: { name: 'gsi1pk', value: keys.allApiBindings() }, limit: page.limit, ...(page.cursor ? { cursor: page.cursor } : {}) },
      (i) =>
        typeof i.apiId === 'string' && typeof i.set === 'string' && i.deleted !== true
          ? { apiId: i.apiId, set: i.set, version: stampVersion(i), ...(typeof i.updatedAt === 'number' ? { updatedAt: i.updatedAt } : {}), ...(typeof i.updatedBy === 'string' ? { updatedBy: i.updatedBy } : {}) }
          : undefined,
    );
  }

  // History: every version of a set, kept by the write that makes it (DESIGN §9).

  /**
   * A set's versions, newest first, one page at a time (strongly consistent: the history
   * partition is read directly, never through an index).
   */
  async listVersions(name: string, page: { limit: number; cursor?: string }): Promise<{ items: VersionSummary[]; nextCursor?: string }> {
    checkSetName(name);
    const result = await queryPage(
      this.db,
      'Query policy history',
      { partition: { name: 'pk', value: keys.policyHistory(name) }, range: { beginsWith: keys.historyEntryPrefix() }, newestFirst: true, limit: page.limit, ...(page.cursor ? { cursor: page.cursor } : {}) },
      versionSummary,
    );
    return result;
  }

  /** One version of a set whole (its entry and content items), or undefined when the history does not hold it. */
  async readVersion(name: string, version: number): Promise<StoredVersion | undefined> {
    checkSetName(name);
    const pk = keys.policyHistory(name);
    const found = await this.batchGet('policy version', [[pk, keys.historyEntrySk(version)], [pk, keys.historyRoutesSk(version)], [pk, keys.historyTestsSk(version)]]);
    const entry = found.get(keyId([pk, keys.historyEntrySk(version)]));
    const summary = entry ? versionSummary(entry) : undefined;
    if (!entry || !summary) return undefined;
    const routes = found.get(keyId([pk, keys.historyRoutesSk(version)]))?.routes;
    const tests = parseJson(found.get(keyId([pk, keys.historyTestsSk(version)]))?.tests);
    return {
      ...summary,
      routes: Array.isArray(routes) ? (routes as RouteRule[]) : [],
      ...(typeof entry.gate === 'string' ? { gate: entry.gate } : {}),
      tests: Array.isArray(tests) ? (tests as PolicyTest[]) : [],
    };
  }

  /**
   * The history items of a write that moves `base` to version `next` with content `after`,
   * for the write's own transaction (so the history and the live set never disagree):
   * - the version `base` replaces, when the history does not hold it yet (a set or a
   *   legacy default set written before history existed): a `baseline` entry;
   * - the new version's entry, with a summary of the change from `base`;
   * - the deletion of the entry `HISTORY_KEEP` versions back (versions move on by one per
   *   write, so this keeps exactly the last `HISTORY_KEEP`; deleting what is not there is
   *   a no-op).
   * Each entry is up to three items: routes as the live `ROUTES` item holds them, tests as
   * JSON text as the live `TESTS` item holds them (each within the limits `checkStoredSize`
   * keeps), and the entry itself (who, when, action, summary, gate): at most 9 items and
   * about 1.2 MB, with the live items well inside a transaction's 100 items and 4 MB.
   */
  private historyWrites(base: StoredSet, after: PolicyContent, next: number, now: number, actor: string | undefined, note: HistoryNote): TransactWriteItem[] {
    const before: PolicyContent = { routes: base.routes, gate: base.gate ?? null, tests: base.tests };
    const out: TransactWriteItem[] = [];
    if ((base.legacy || base.stamp === 'live') && !base.recorded) {
      out.push(...this.versionItems(base.name, base.version, before, { action: 'baseline', ...(base.updatedAt !== undefined ? { updatedAt: base.updatedAt } : {}), ...(base.updatedBy !== undefined ? { updatedBy: base.updatedBy } : {}) }));
    }
    out.push(
      ...this.versionItems(base.name, next, after, {
        action: note.action ?? 'write',
        updatedAt: now,
        updatedBy: actor ?? 'system',
        summary: summarizeChange(before, after),
        ...(note.restoredFrom !== undefined ? { restoredFrom: note.restoredFrom } : {}),
      }),
    );
    const pruned = next - HISTORY_KEEP;
    if (pruned >= 0) {
      const pk = keys.policyHistory(base.name);
      out.push(this.del([pk, keys.historyEntrySk(pruned)]), this.del([pk, keys.historyRoutesSk(pruned)]), this.del([pk, keys.historyTestsSk(pruned)]));
    }
    return out;
  }

  /** The items of one history entry; empty routes or tests take no item. */
  private versionItems(set: string, version: number, content: PolicyContent, meta: Omit<VersionSummary, 'version'>): TransactWriteItem[] {
    const pk = keys.policyHistory(set);
    const out: TransactWriteItem[] = [
      this.put({
        pk,
        sk: keys.historyEntrySk(version),
        type: 'policy-version',
        set,
        version,
        ...meta,
        ...(content.gate !== null ? { gate: content.gate } : {}),
      }),
    ];
    if (content.routes.length > 0) out.push(this.put({ pk, sk: keys.historyRoutesSk(version), type: 'policy-version-routes', routes: content.routes }));
    if (content.tests.length > 0) out.push(this.put({ pk, sk: keys.historyTestsSk(version), type: 'policy-version-tests', tests: JSON.stringify(content.tests) }));
    return out;
  }

  /** Replaces the default set's route table whatever its version (tests, benchmarks, the local seed). */
  async putRoutes(routes: RouteRule[], now: number, actor?: string): Promise<string> {
    return this.overwriteDefault({ routes }, now, actor);
  }

  /** Sets or clears (`null`) the default set's gate whatever its version. */
  async putGate(expression: string | null, now: number, actor?: string): Promise<string> {
    return this.overwriteDefault({ gate: expression }, now, actor);
  }

  private async overwriteDefault(change: SetChange, now: number, actor?: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        return String(await this.writeSet(await this.readSet(DEFAULT_SET), change, now, actor));
      } catch (err) {
        if (!(err instanceof PreconditionFailed) || attempt >= 4) throw err;
      }
    }
  }

  /**
   * Creates or replaces a custom role. Extra transaction items (e.g. conditions) may be
   * added. An org role is written only while its org exists and is not being deleted
   * (NotFound otherwise).
   */
  async putRole(role: Role, now: number, extra: TransactWriteItem[] = []): Promise<string> {
    const put: TransactWriteItem = { Put: { TableName: this.db.tableName, Item: toItem(roleItem(role, now)) } };
    if (!role.orgId) return this.write([put, ...extra], now);
    const failed = await transact(this.db, 'TransactWriteItems policy', [orgAliveCheck(this.db, role.orgId), put, ...extra, this.versionBump(now)]);
    if (failed?.has(0)) throw new NotFound();
    if (failed) throw new StoreError('policy-condition-failed', 'a condition of the role write failed');
    return this.getPolicyVersion();
  }

  /** Deletes a custom role (and bumps the version); false when it did not exist. */
  async deleteRole(name: string, orgId: string | undefined, now: number): Promise<boolean> {
    try {
      await this.write(
        [
          {
            Delete: {
              TableName: this.db.tableName,
              Key: toItem({ pk: keys.policy(), sk: orgId ? keys.orgRoleSk(orgId, name) : keys.siteRoleSk(name) }),
              ConditionExpression: 'attribute_exists(pk)',
            },
          },
        ],
        now,
      );
      return true;
    } catch (err) {
      if (isConditionFailure((err as { cause?: unknown }).cause)) return false;
      throw err;
    }
  }

  /** The transaction item that bumps the role catalog's version stamp. */
  versionBump(now: number): TransactWriteItem {
    return {
      Update: {
        TableName: this.db.tableName,
        Key: toItem({ pk: keys.policy(), sk: keys.versionSk() }),
        UpdateExpression: 'ADD #v :one SET updatedAt = :now, #t = :type',
        ExpressionAttributeNames: { '#v': 'version', '#t': 'type' },
        ExpressionAttributeValues: values({ ':one': 1, ':now': now, ':type': 'version' }),
      },
    };
  }

  /** Runs role-catalog `items` plus the catalog version bump atomically; returns the default set's version after. */
  async write(items: TransactWriteItem[], now: number): Promise<string> {
    await guard('TransactWriteItems policy', () =>
      this.db.client.send(new TransactWriteItemsCommand({ TransactItems: [...items, this.versionBump(now)] })),
    );
    return this.getPolicyVersion();
  }

  // --- Shadow mode: a set's candidate version and its report (DESIGN §9) ------------------

  /** A set's stamp and its candidate as stored (tests included): one GetItem, then one BatchGetItem. */
  async readCandidate(name: string): Promise<CandidateState> {
    checkSetName(name);
    const stampItem = await this.getItem('policy set version', this.stampKey(name));
    const s = this.assemble(name, stampItem, new Map());
    const pk = keys.policySet(name);
    const current = s.stamp === 'live' && typeof stampItem?.candidate === 'number' ? stampItem.candidate : undefined;
    const base: CandidateState = { name, exists: s.exists, stamp: s.stamp, version: s.version, seq: typeof stampItem?.candidateSeq === 'number' ? stampItem.candidateSeq : 0 };
    if (current === undefined) return base;
    const content = await this.batchGet('policy candidate', [[pk, keys.candidateSk()], [pk, keys.candidateTestsSk()]]);
    const item = content.get(keyId([pk, keys.candidateSk()]));
    if (!item || item.candidate !== current) return { ...base, current };
    const tests = parseJson(content.get(keyId([pk, keys.candidateTestsSk()]))?.tests);
    return {
      ...base,
      current,
      candidate: {
        candidate: current,
        basedOn: stampVersion({ version: item.basedOn }),
        routes: Array.isArray(item.routes) ? (item.routes as RouteRule[]) : [],
        ...(typeof item.gate === 'string' ? { gate: item.gate } : {}),
        tests: Array.isArray(tests) ? (tests as PolicyTest[]) : [],
        createdAt: typeof item.createdAt === 'number' ? item.createdAt : 0,
        createdBy: typeof item.createdBy === 'string' ? item.createdBy : 'system',
      },
    };
  }

  /**
   * Stores a candidate of a set written in its own partition (stamp `live`), compared
   * against the set's version as `base` read it, and returns its number. 412
   * `version-mismatch` when the set or its candidate changed since `base` was read.
   */
  async putCandidate(base: CandidateState, content: { routes: RouteRule[]; gate?: string | null; tests: PolicyTest[] }, now: number, actor?: string): Promise<number> {
    checkStoredSize('routes', content.routes);
    checkStoredSize('tests', content.tests);
    const next = base.seq + 1;
    const pk = keys.policySet(base.name);
    const items: TransactWriteItem[] = [
      {
        Update: {
          TableName: this.db.tableName,
          Key: toItem({ pk, sk: keys.versionSk() }),
          UpdateExpression: 'SET #c = :next, #s = :next',
          // The set is live at the version the candidate records as `basedOn` (so the report
          // compares against what it says), and its candidate is as read: numbers are never
          // reused, and an If-Match on the candidate holds atomically.
          ConditionExpression: `#v = :version AND attribute_not_exists(#d) AND ${base.seq === 0 ? 'attribute_not_exists(#s)' : '#s = :seq'} AND ${base.current === undefined ? 'attribute_not_exists(#c)' : '#c = :current'}`,
          ExpressionAttributeNames: { '#c': 'candidate', '#s': 'candidateSeq', '#v': 'version', '#d': 'deleted' },
          ExpressionAttributeValues: values({ ':next': next, ':version': base.version, ...(base.seq === 0 ? {} : { ':seq': base.seq }), ...(base.current === undefined ? {} : { ':current': base.current }) }),
        },
      },
      this.put({ pk, sk: keys.candidateSk(), type: 'policy-candidate', candidate: next, basedOn: base.version, routes: content.routes, ...(typeof content.gate === 'string' ? { gate: content.gate } : {}), createdAt: now, createdBy: actor ?? 'system' }),
      // Tests are kept as text, as the set's own are (free-form JSON).
      content.tests.length === 0 ? this.del([pk, keys.candidateTestsSk()]) : this.put({ pk, sk: keys.candidateTestsSk(), type: 'policy-candidate-tests', tests: JSON.stringify(content.tests), updatedAt: now }),
    ];
    if (await transact(this.db, 'TransactWriteItems policy candidate', items)) throw candidateChanged(base.name);
    return next;
  }

  /** Removes candidate `candidate` of a set (412 `version-mismatch` when it is no longer the current one). Its report goes too. */
  async deleteCandidate(name: string, candidate: number): Promise<void> {
    const pk = keys.policySet(name);
    const items: TransactWriteItem[] = [
      {
        Update: {
          TableName: this.db.tableName,
          Key: toItem({ pk, sk: keys.versionSk() }),
          UpdateExpression: 'REMOVE #c',
          // Only the candidate that was read: a replacement stored meanwhile stays.
          ConditionExpression: '#c = :current',
          ExpressionAttributeNames: { '#c': 'candidate' },
          ExpressionAttributeValues: values({ ':current': candidate }),
        },
      },
      this.del([pk, keys.candidateSk()]),
      this.del([pk, keys.candidateTestsSk()]),
    ];
    if (await transact(this.db, 'TransactWriteItems delete policy candidate', items)) throw candidateChanged(name);
    await this.deleteShadowReport(name, candidate);
  }

  /** A candidate's report as stored: totals, every kind of difference (most frequent first, at most `limit`), examples. */
  async readShadowReport(name: string, candidate: number, limit = 200): Promise<ShadowReport> {
    const pk = keys.policySet(name);
    const report: ShadowReport = { compared: 0, differing: 0, failed: 0, unkeyed: 0, differences: [], examples: [], truncated: false };
    let startKey: QueryCommandOutput['LastEvaluatedKey'];
    do {
      const out: QueryCommandOutput = await guard('Query shadow report', () =>
        this.db.client.send(
          new QueryCommand({
            TableName: this.db.tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
            ExpressionAttributeValues: values({ ':pk': pk, ':prefix': keys.shadowPrefix(candidate) }),
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const raw of out.Items ?? []) {
        const i = fromItem(raw);
        if (i.type === 'shadow-totals') {
          for (const k of ['compared', 'differing', 'failed', 'unkeyed'] as const) report[k] = typeof i[k] === 'number' ? i[k] : 0;
          if (typeof i.firstAt === 'number') report.firstAt = i.firstAt;
          if (typeof i.lastAt === 'number') report.lastAt = i.lastAt;
        } else if (i.type === 'shadow-examples' && Array.isArray(i.examples)) {
          report.examples = (i.examples as ShadowExample[]).slice(0, MAX_STORED_EXAMPLES);
        } else if (i.type === 'shadow-difference') {
          report.differences.push({
            route: typeof i.route === 'string' ? i.route : null,
            candidateRoute: typeof i.candidateRoute === 'string' ? i.candidateRoute : null,
            live: i.liveOutcome as ShadowOutcome,
            candidate: i.candidateOutcome as ShadowOutcome,
            count: typeof i.count === 'number' ? i.count : 0,
          });
        }
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    report.differences.sort((x, y) => y.count - x.count);
    if (report.differences.length > limit) {
      report.differences = report.differences.slice(0, limit);
      report.truncated = true;
    }
    return report;
  }

  /** Deletes a candidate's report items (the items also expire by themselves). */
  async deleteShadowReport(name: string, candidate: number): Promise<void> {
    const pk = keys.policySet(name);
    let startKey: QueryCommandOutput['LastEvaluatedKey'];
    do {
      const out: QueryCommandOutput = await guard('Query shadow report', () =>
        this.db.client.send(
          new QueryCommand({
            TableName: this.db.tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
            ExpressionAttributeValues: values({ ':pk': pk, ':prefix': keys.shadowPrefix(candidate) }),
            ProjectionExpression: 'pk, sk',
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      const found = out.Items ?? [];
      for (let i = 0; i < found.length; i += 25) {
        let request = found.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } }));
        for (let attempt = 0; request.length > 0 && attempt < 5; attempt++) {
          const res = await guard('BatchWriteItem shadow report', () => this.db.client.send(new BatchWriteItemCommand({ RequestItems: { [this.db.tableName]: request } })));
          request = (res.UnprocessedItems?.[this.db.tableName] ?? []) as typeof request;
        }
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
  }

  /** The update that moves a set's stamp to `next`, conditioned on the stamp as `base` read it. */
  private stampWrite(base: StoredSet, next: number, now: number, actor: string | undefined): TransactWriteItem {
    // `default` always exists and is listed anyway: it stays out of the listing index.
    const listed = base.name !== DEFAULT_SET;
    return {
      Update: {
        TableName: this.db.tableName,
        Key: toItem({ pk: keys.policySet(base.name), sk: keys.versionSk() }),
        // `historyVersion`: the set's history holds this version (written in this transaction).
        UpdateExpression: `SET #v = :next, #h = :next, #t = :type, #n = :name, updatedAt = :now, updatedBy = :by${listed ? ', gsi1pk = :g, gsi1sk = :name' : ''} REMOVE #d`,
        ...stampCondition(base),
        ExpressionAttributeNames: { '#v': 'version', '#h': 'historyVersion', '#t': 'type', '#n': 'name', '#d': 'deleted' },
        ExpressionAttributeValues: values({ ':next': next, ':type': 'policy-set', ':name': base.name, ':now': now, ':by': actor ?? 'system', ...(listed ? { ':g': keys.allPolicySets() } : {}), ...stampValues(base) }),
      },
    };
  }

  /** Moves a set's count of bound APIs. */
  private countBinding(set: string, by: 1 | -1): TransactWriteItem {
    return {
      Update: {
        TableName: this.db.tableName,
        Key: toItem({ pk: keys.policySet(set), sk: keys.versionSk() }),
        UpdateExpression: 'ADD #b :by',
        // Binding to a set: it must exist now (a deletion conditions on the count, so the
        // two cannot interleave). Unbinding: never create a stamp for a set that is gone.
        ConditionExpression: by === 1 ? 'attribute_exists(pk) AND attribute_not_exists(#d)' : 'attribute_exists(pk)',
        ExpressionAttributeNames: by === 1 ? { '#b': 'bindings', '#d': 'deleted' } : { '#b': 'bindings' },
        ExpressionAttributeValues: values({ ':by': by }),
      },
    };
  }

  private put(item: Item): TransactWriteItem {
    return { Put: { TableName: this.db.tableName, Item: toItem(item) } };
  }

  private del([pk, sk]: Key): TransactWriteItem {
    return { Delete: { TableName: this.db.tableName, Key: toItem({ pk, sk }) } };
  }

}

/**
 * The condition of a write over a version stamp as it was read: nobody created it since
 * (absent), or it is still at that version (every change, a deletion included, moves the
 * version on, so an equal version is an unchanged stamp, live or tombstone). This is what
 * turns `If-Match` into an atomic check: it is evaluated in the write's own transaction.
 */
function stampCondition(base: { stamp: 'none' | 'live' | 'deleted' }): { ConditionExpression: string } {
  return { ConditionExpression: base.stamp === 'none' ? 'attribute_not_exists(pk)' : '#v = :expected' };
}

function stampValues(base: { stamp: 'none' | 'live' | 'deleted'; version: number }): Record<string, number> {
  return base.stamp === 'none' ? {} : { ':expected': base.version };
}

function candidateChanged(set: string): PreconditionFailed {
  return new PreconditionFailed('version-mismatch', `policy set ${set} or its candidate changed meanwhile: read the candidate again`);
}

/** A set's stamp and candidate state, as a candidate write needs it. */
export interface CandidateState {
  name: string;
  exists: boolean;
  stamp: 'none' | 'live' | 'deleted';
  /** The live set's version. */
  version: number;
  /** The last candidate number handed out (0: none yet). */
  seq: number;
  /** The current candidate's number, when there is one. */
  current?: number;
  candidate?: StoredCandidate;
}

/** A candidate as stored, for the admin API. */
export interface StoredCandidate {
  candidate: number;
  basedOn: number;
  routes: RouteRule[];
  gate?: string;
  tests: PolicyTest[];
  createdAt: number;
  createdBy: string;
}

/** A candidate's shadow report as stored (summed over containers). */
export interface ShadowReport {
  compared: number;
  differing: number;
  failed: number;
  unkeyed: number;
  firstAt?: number;
  lastAt?: number;
  differences: ShadowDifference[];
  examples: ShadowExample[];
  /** More kinds of difference were stored than the report lists. */
  truncated: boolean;
}

function mismatch(set: string): PreconditionFailed {
  return new PreconditionFailed('version-mismatch', `policy set ${set} changed meanwhile: read it again`);
}

function inUse(set: string, n: number): Conflict {
  return new Conflict('set-in-use', `policy set ${set} is bound to ${n} API(s): bind them elsewhere first (GET /policies/apis)`);
}

function summary(i: Item): SetSummary {
  return {
    name: String(i.name),
    version: stampVersion(i),
    bindings: typeof i.bindings === 'number' ? i.bindings : 0,
    ...(typeof i.updatedAt === 'number' ? { updatedAt: i.updatedAt } : {}),
    ...(typeof i.updatedBy === 'string' ? { updatedBy: i.updatedBy } : {}),
  };
}

/** The stored shape of a custom role. */
export function roleItem(role: Role, now: number) {
  return {
    pk: keys.policy(),
    sk: role.orgId ? keys.orgRoleSk(role.orgId, role.name) : keys.siteRoleSk(role.name),
    type: 'role',
    name: role.name,
    displayName: role.displayName,
    orgId: role.orgId,
    site: role.site,
    org: role.org,
    member: role.member,
    user: role.user,
    updatedAt: now,
  };
}

const HISTORY_ACTIONS: ReadonlySet<string> = new Set<HistoryAction>(['create', 'put', 'patch', 'put-routes', 'put-gate', 'rollback', 'promote', 'delete', 'write', 'baseline']);

/** A history entry item as a listing shows it (undefined for anything else). */
function versionSummary(i: Item): VersionSummary | undefined {
  if (i.type !== 'policy-version' || typeof i.version !== 'number' || typeof i.action !== 'string' || !HISTORY_ACTIONS.has(i.action)) return undefined;
  return {
    version: i.version,
    action: i.action as HistoryAction,
    ...(typeof i.updatedAt === 'number' ? { updatedAt: i.updatedAt } : {}),
    ...(typeof i.updatedBy === 'string' ? { updatedBy: i.updatedBy } : {}),
    ...(i.summary && typeof i.summary === 'object' ? { summary: i.summary as ChangeSummary } : {}),
    ...(typeof i.restoredFrom === 'number' ? { restoredFrom: i.restoredFrom } : {}),
  };
}


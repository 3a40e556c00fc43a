import { createHash } from 'node:crypto';
import { BatchGetItemCommand, GetItemCommand, QueryCommand, UpdateItemCommand, type BatchGetItemCommandOutput, type KeysAndAttributes, type QueryCommandOutput } from '@aws-sdk/client-dynamodb';
import { StoreError } from '../../errors';
import { ADMIN_SET, ADMIN_SET_VERSION, adminSetRoutes, DEFAULT_SET, isLegacyAdminRule } from '../../policy/admin-set';
import { API_ID_RE, checkSetName, type PolicyTest } from '../../policy/policy-set';
import type { RouteRule } from '../../policy/routes';
import type { Permission, Role } from '../../rbac/types';
import { keys } from '../schema';
import type { CandidateSnapshot, PolicySnapshot, ShadowAggregate, ShadowDifference } from '../types';
import { type Db, type Item, fromItem, guard, isConditionFailure, toItem, values } from './db';

/** A policy set as stored, with what a conditional write needs to know about its version stamp. */
export interface StoredSet {
  name: string;
  /** The `default` set always exists; any other exists from its first write until deleted. */
  exists: boolean;
  /** The set's version counter: 0 before its first write. Never reused: a deleted set keeps its count. */
  version: number;
  /** The version stamp item: absent, live, or a tombstone left by a deletion. */
  stamp: 'none' | 'live' | 'deleted';
  /** The `default` set still in the layout before policy sets (`POLICY`/`ROUTES`, `GATE`); its first write moves it. */
  legacy: boolean;
  /** How many APIs are bound to it (it cannot be deleted while any is). */
  bindings: number;
  routes: RouteRule[];
  gate?: string;
  tests: PolicyTest[];
  updatedAt?: number;
  updatedBy?: string;
  /** Whether the set's history holds this version (false for versions written before history existed). */
  recorded?: boolean;
}

/** An API's binding to a policy set, as stored. */
export interface StoredBinding {
  apiId: string;
  exists: boolean;
  version: number;
  stamp: 'none' | 'live' | 'deleted';
  set?: string;
  updatedAt?: number;
  updatedBy?: string;
}

export type Key = readonly [pk: string, sk: string];
export const keyId = ([pk, sk]: Key) => `${pk}\u0000${sk}`;

/**
 * What the authorizer does with policy storage: read a set's version and its snapshot
 * (routes, gate, candidate, role catalog), read API bindings, and add to a candidate's
 * shadow report. Layout and write rules are in {@link PolicyRepo} (`./policy`), which
 * extends this with the admin side; the authorizer's bundle holds only this file.
 * Readers take the stamps first and the content after, so a snapshot's version is never
 * newer than its content: a write in between only makes the next version check reload.
 */
export class PolicyReader {
  constructor(protected readonly db: Db) {}

  /** The version of `set` together with the role catalog: `<set version>.<catalog version>`. */
  async getPolicyVersion(set: string = DEFAULT_SET): Promise<string> {
    checkSetName(set);
    if (set === ADMIN_SET) return `${ADMIN_SET_VERSION}.${versionOf(await this.getItem('policy version', [keys.policy(), keys.versionSk()]))}`;
    const stamps = await this.batchGet('policy version', [this.stampKey(set), [keys.policy(), keys.versionSk()]]);
    const stamp = stamps.get(keyId(this.stampKey(set)));
    return `${stampVersion(stamp)}.${versionOf(stamps.get(keyId([keys.policy(), keys.versionSk()])))}${candidateSuffix(stamp)}`;
  }

  /** A set's routes and gate with every custom role: stamps, then content and roles in parallel. */
  async loadPolicy(set: string = DEFAULT_SET): Promise<PolicySnapshot> {
    checkSetName(set);
    const catalogKey: Key = [keys.policy(), keys.versionSk()];
    if (set === ADMIN_SET) {
      const catalogVersion = versionOf(await this.getItem('policy version', catalogKey));
      const catalog = await this.loadCatalog();
      return { set, version: `${ADMIN_SET_VERSION}.${catalogVersion}`, routes: adminSetRoutes(), roles: catalog.roles, ...(catalog.deletingOrgIds.length > 0 ? { deletingOrgIds: catalog.deletingOrgIds } : {}) };
    }
    const stamps = await this.batchGet('policy version', [this.stampKey(set), catalogKey]);
    // The candidate (shadow mode) comes in the same batch as the set's content: no extra round trip.
    const candidateKey: Key = [keys.policySet(set), keys.candidateSk()];
    const [content, catalog] = await Promise.all([this.batchGet('policy set', [...this.contentKeys(set, false), candidateKey]), this.loadCatalog()]);
    const stamp = stamps.get(keyId(this.stampKey(set)));
    const state = this.assemble(set, stamp, content);
    const candidate = candidateOf(stamp, content.get(keyId(candidateKey)));
    return {
      set,
      version: `${state.version}.${versionOf(stamps.get(keyId(catalogKey)))}${candidateSuffix(stamp)}`,
      routes: state.routes,
      ...(state.gate !== undefined ? { gate: state.gate } : {}),
      roles: catalog.roles,
      ...(catalog.deletingOrgIds.length > 0 ? { deletingOrgIds: catalog.deletingOrgIds } : {}),
      ...(candidate ? { candidate } : {}),
    };
  }

  /** The policy set bound to an API, or undefined. A malformed id is never looked up. */
  async getApiBinding(apiId: string): Promise<string | undefined> {
    if (typeof apiId !== 'string' || !API_ID_RE.test(apiId)) return undefined;
    const b = await this.readBinding(apiId);
    return b.exists ? b.set : undefined;
  }

  /** An API's binding as stored (its version counts on across unbinding). */
  async readBinding(apiId: string): Promise<StoredBinding> {
    const item = await this.getItem('api binding', [keys.apiBinding(apiId), keys.apiBindingSk()]);
    const stamp = !item ? 'none' : item.deleted === true ? 'deleted' : 'live';
    const set = typeof item?.set === 'string' ? item.set : undefined;
    return {
      apiId,
      exists: stamp === 'live' && set !== undefined,
      version: stampVersion(item),
      stamp,
      ...(stamp === 'live' && set !== undefined ? { set } : {}),
      ...(typeof item?.updatedAt === 'number' ? { updatedAt: item.updatedAt } : {}),
      ...(typeof item?.updatedBy === 'string' ? { updatedBy: item.updatedBy } : {}),
    };
  }

  /** Every custom role (the catalog's `ROLE#` items). */
  async loadRoles(): Promise<Role[]> {
    return (await this.loadCatalog()).roles;
  }

  /**
   * The catalog partition in one paginated Query: every custom role, and the orgs being
   * deleted (their markers, written with a catalog version bump, so warm authorizers
   * reload and drop those orgs' memberships and tokens).
   */
  async loadCatalog(): Promise<{ roles: Role[]; deletingOrgIds: string[] }> {
    const roles: Role[] = [];
    const deletingOrgIds: string[] = [];
    let startKey: QueryCommandOutput['LastEvaluatedKey'];
    do {
      const out: QueryCommandOutput = await guard('Query roles', () =>
        this.db.client.send(
          new QueryCommand({
            TableName: this.db.tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: values({ ':pk': keys.policy() }),
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const raw of out.Items ?? []) {
        const item = fromItem(raw);
        if (item.type === 'org-deleting' && typeof item.orgId === 'string') deletingOrgIds.push(item.orgId);
        else if (item.type === 'role') {
          const role = roleFromItem(item);
          if (role) roles.push(role);
        }
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return { roles, deletingOrgIds };
  }

  /**
   * Adds one container's counts to a candidate's report: one UpdateItem for the totals,
   * one per kind of difference, one for the examples (bounded by the caller's caps).
   * Counts add (ADD), so containers never overwrite each other. Report items expire
   * (`expiresAt`) a while after their last write: a report left behind by a discarded
   * candidate, which a container flushed into after the discard, goes by itself.
   */
  async recordShadow(a: ShadowAggregate, now: number): Promise<number> {
    const pk = keys.policySet(a.set);
    const expiresAt = now + SHADOW_REPORT_TTL_SECONDS;
    const update = (sk: string, expression: string, names: Record<string, string>, vals: Item, condition?: string) =>
      guard('UpdateItem shadow report', () =>
        this.db.client.send(
          new UpdateItemCommand({
            TableName: this.db.tableName,
            Key: toItem({ pk, sk }),
            UpdateExpression: expression,
            ...(condition ? { ConditionExpression: condition } : {}),
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values(vals),
          }),
        ),
      );
    const writes: Promise<unknown>[] = [
      update(
        keys.shadowTotalsSk(a.candidate),
        'ADD #cmp :cmp, #dif :dif, #fail :fail, #unk :unk SET #t = :type, #first = if_not_exists(#first, :now), #last = :now, #exp = :exp',
        { '#cmp': 'compared', '#dif': 'differing', '#fail': 'failed', '#unk': 'unkeyed', '#t': 'type', '#first': 'firstAt', '#last': 'lastAt', '#exp': 'expiresAt' },
        { ':cmp': a.compared, ':dif': a.differing, ':fail': a.failed, ':unk': a.unkeyed, ':type': 'shadow-totals', ':now': now, ':exp': expiresAt },
      ),
    ];
    for (const d of a.differences) {
      writes.push(
        update(
          keys.shadowDiffSk(a.candidate, differenceKey(d)),
          'ADD #n :n SET #t = :type, #r = :route, #cr = :croute, #l = :live, #c = :cand, #exp = :exp',
          { '#n': 'count', '#t': 'type', '#r': 'route', '#cr': 'candidateRoute', '#l': 'liveOutcome', '#c': 'candidateOutcome', '#exp': 'expiresAt' },
          { ':n': d.count, ':type': 'shadow-difference', ':route': d.route, ':croute': d.candidateRoute, ':live': d.live, ':cand': d.candidate, ':exp': expiresAt },
        ),
      );
    }
    if (a.examples.length > 0) {
      const examples = a.examples.slice(0, MAX_STORED_EXAMPLES);
      writes.push(
        update(
          keys.shadowExamplesSk(a.candidate),
          'SET #e = list_append(if_not_exists(#e, :empty), :new), #t = :type, #exp = :exp',
          { '#e': 'examples', '#t': 'type', '#exp': 'expiresAt' },
          { ':empty': [], ':new': examples, ':type': 'shadow-examples', ':exp': expiresAt, ':room': MAX_STORED_EXAMPLES - examples.length },
          // The sample is bounded however many containers add to it: once full, it stays as it is.
          'attribute_not_exists(#e) OR size(#e) <= :room',
        ).catch((err) => {
          if (!isConditionFailure((err as { cause?: unknown }).cause)) throw err;
        }),
      );
    }
    const results = await Promise.allSettled(writes);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return writes.length;
  }

  protected stampKey(set: string): Key {
    return [keys.policySet(set), keys.versionSk()];
  }

  protected contentKeys(set: string, withTests: boolean): Key[] {
    const pk = keys.policySet(set);
    const out: Key[] = [[pk, keys.routesSk()], [pk, keys.gateSk()]];
    if (withTests) out.push([pk, keys.testsSk()]);
    // Until its first write, the default set may still be in the old layout.
    if (set === DEFAULT_SET) out.push([keys.policy(), keys.routesSk()], [keys.policy(), keys.gateSk()]);
    return out;
  }

  protected assemble(name: string, stampItem: Item | undefined, content: Map<string, Item>): StoredSet {
    const stamp = !stampItem ? 'none' : stampItem.deleted === true ? 'deleted' : 'live';
    const pk = keys.policySet(name);
    const own = (sk: string) => content.get(keyId([pk, sk]));
    const old = (sk: string) => content.get(keyId([keys.policy(), sk]));
    const inNewLayout = stamp !== 'none' || own(keys.routesSk()) !== undefined || own(keys.gateSk()) !== undefined;
    const legacy = name === DEFAULT_SET && !inNewLayout && (old(keys.routesSk()) !== undefined || old(keys.gateSk()) !== undefined);
    const from = (sk: string) => (legacy ? old(sk) : stamp === 'deleted' ? undefined : own(sk));
    const storedRoutes = from(keys.routesSk())?.routes;
    const gate = from(keys.gateSk())?.expression;
    const tests = legacy ? undefined : parseJson(from(keys.testsSk())?.tests);
    return {
      name,
      exists: name === DEFAULT_SET || stamp === 'live',
      version: stampVersion(stampItem),
      stamp,
      legacy,
      bindings: typeof stampItem?.bindings === 'number' ? stampItem.bindings : 0,
      // Copies of the admin rules the old layout stored are dropped: the admin API has its own set now.
      routes: Array.isArray(storedRoutes) ? (storedRoutes as RouteRule[]).filter((r) => !(legacy && isLegacyAdminRule(r))) : [],
      ...(typeof gate === 'string' ? { gate } : {}),
      tests: Array.isArray(tests) ? (tests as PolicyTest[]) : [],
      ...(typeof stampItem?.updatedAt === 'number' ? { updatedAt: stampItem.updatedAt } : {}),
      ...(typeof stampItem?.updatedBy === 'string' ? { updatedBy: stampItem.updatedBy } : {}),
      recorded: stamp !== 'none' && stampItem?.historyVersion === stampVersion(stampItem),
    };
  }

  protected async getItem(what: string, [pk, sk]: Key): Promise<Item | undefined> {
    const out = await guard(`GetItem ${what}`, () =>
      this.db.client.send(new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk, sk }), ConsistentRead: true })),
    );
    return out.Item ? fromItem(out.Item) : undefined;
  }

  /** Strongly consistent BatchGetItem; unprocessed keys are retried a few times, then it fails closed. */
  protected async batchGet(what: string, list: readonly Key[]): Promise<Map<string, Item>> {
    const found = new Map<string, Item>();
    let request: Record<string, KeysAndAttributes> = { [this.db.tableName]: { Keys: list.map(([pk, sk]) => toItem({ pk, sk })), ConsistentRead: true } };
    for (let attempt = 0; ; attempt++) {
      const out: BatchGetItemCommandOutput = await guard(`BatchGetItem ${what}`, () => this.db.client.send(new BatchGetItemCommand({ RequestItems: request })));
      for (const raw of out.Responses?.[this.db.tableName] ?? []) {
        const item = fromItem(raw);
        found.set(keyId([String(item.pk), String(item.sk)]), item);
      }
      const rest = out.UnprocessedKeys?.[this.db.tableName];
      if (!rest?.Keys?.length) return found;
      if (attempt >= 4) throw new StoreError('store-unavailable', `DynamoDB BatchGetItem ${what} left keys unprocessed`);
      await new Promise((r) => setTimeout(r, 10 * 2 ** attempt));
      request = { [this.db.tableName]: rest };
    }
  }
}

/** How long a shadow report's items outlive their last write. */
export const SHADOW_REPORT_TTL_SECONDS = 30 * 86400;
/** Most examples a candidate's report keeps, however many containers add to it. */
export const MAX_STORED_EXAMPLES = 50;

/** `+<candidate>` while a live set has a candidate: the version check notices it coming and going. */
export function candidateSuffix(stamp: Item | undefined): string {
  return stamp && stamp.deleted !== true && typeof stamp.candidate === 'number' ? `+${stamp.candidate}` : '';
}

/**
 * The candidate the stamp names, from its item. Read after the stamp, the item may be
 * newer or gone: then there is none now, and the next version check reloads.
 */
export function candidateOf(stamp: Item | undefined, item: Item | undefined): CandidateSnapshot | undefined {
  if (!stamp || stamp.deleted === true || typeof stamp.candidate !== 'number' || !item || item.candidate !== stamp.candidate) return undefined;
  return {
    candidate: stamp.candidate,
    basedOn: stampVersion({ version: item.basedOn }),
    // Not checked here: a malformed table becomes a broken candidate when compiled, seen only by the shadow path.
    routes: item.routes as RouteRule[],
    ...(typeof item.gate === 'string' ? { gate: item.gate } : {}),
  };
}

/** A stable, short key for a kind of difference. */
function differenceKey(d: ShadowDifference): string {
  return createHash('sha256').update(JSON.stringify([d.route, d.candidateRoute, d.live, d.candidate])).digest('base64url').slice(0, 16);
}

function perms(v: unknown): Permission[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((p) => {
    if (!p || typeof p !== 'object') return [];
    const { resource, action, negate } = p as Record<string, unknown>;
    if (typeof resource !== 'string' || typeof action !== 'string') return [];
    return [negate === true ? { resource, action, negate: true } : { resource, action }];
  });
}

/** Reads a custom role from a stored item. */
export function roleFromItem(item: Record<string, unknown>): Role | undefined {
  if (typeof item.name !== 'string') return undefined;
  return {
    name: item.name,
    ...(typeof item.displayName === 'string' ? { displayName: item.displayName } : {}),
    ...(typeof item.orgId === 'string' ? { orgId: item.orgId } : {}),
    site: perms(item.site),
    org: perms(item.org),
    member: perms(item.member),
    user: perms(item.user),
  };
}

export function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function versionOf(item: Record<string, unknown> | undefined): string {
  const v = item?.version;
  return typeof v === 'number' || typeof v === 'string' ? String(v) : '0';
}

export function stampVersion(item: Record<string, unknown> | undefined): number {
  const v = item?.version;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0;
}

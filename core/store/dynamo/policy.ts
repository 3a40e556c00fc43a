import {
  GetItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  type QueryCommandOutput,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import type { RouteRule } from '../../policy/routes';
import type { Permission, Role } from '../../rbac/types';
import { keys } from '../schema';
import type { PolicySnapshot } from '../types';
import { NotFound, StoreError } from '../../errors';
import { type Db, fromItem, guard, isConditionFailure, toItem, transact, values } from './db';
import { orgAliveCheck } from './org-index';

/**
 * The policy partition (`POLICY`): the route table (`ROUTES`), the gate (`GATE`),
 * custom roles (`ROLE#SITE#<name>`, `ROLE#ORG#<org>#<name>`) and a version stamp
 * (`VERSION`) bumped in the same transaction as every change, so warm authorizers
 * can check one small item before reloading everything.
 */
export class PolicyRepo {
  constructor(private readonly db: Db) {}

  async getPolicyVersion(): Promise<string> {
    const out = await guard('GetItem policy version', () =>
      this.db.client.send(
        new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.policy(), sk: keys.versionSk() }), ConsistentRead: true }),
      ),
    );
    return versionOf(out.Item ? fromItem(out.Item) : undefined);
  }

  /** Loads routes, gate, custom roles and the version in one (paginated) Query. */
  async loadPolicy(): Promise<PolicySnapshot> {
    const snapshot: PolicySnapshot = { version: '0', routes: [], roles: [] };
    let startKey: QueryCommandOutput['LastEvaluatedKey'];
    do {
      const out: QueryCommandOutput = await guard('Query policy', () =>
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
        if (item.sk === keys.versionSk()) snapshot.version = versionOf(item);
        else if (item.sk === keys.routesSk() && Array.isArray(item.routes)) snapshot.routes = item.routes as RouteRule[];
        else if (item.sk === keys.gateSk() && typeof item.expression === 'string') snapshot.gate = item.expression;
        else if (item.type === 'org-deleting' && typeof item.orgId === 'string') (snapshot.deletingOrgIds ??= []).push(item.orgId);
        else if (item.type === 'role') {
          const role = roleFromItem(item);
          if (role) snapshot.roles.push(role);
        }
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return snapshot;
  }

  /** Replaces the whole route table (and bumps the version) in one transaction. */
  async putRoutes(routes: RouteRule[], now: number, actor?: string): Promise<string> {
    return this.write([{ Put: { TableName: this.db.tableName, Item: toItem({ pk: keys.policy(), sk: keys.routesSk(), type: 'routes', routes, updatedAt: now, updatedBy: actor }) } }], now);
  }

  /** Sets or clears (`null`) the global gate expression. */
  async putGate(expression: string | null, now: number, actor?: string): Promise<string> {
    const key = toItem({ pk: keys.policy(), sk: keys.gateSk() });
    const item: TransactWriteItem =
      expression === null
        ? { Delete: { TableName: this.db.tableName, Key: key } }
        : { Put: { TableName: this.db.tableName, Item: toItem({ pk: keys.policy(), sk: keys.gateSk(), type: 'gate', expression, updatedAt: now, updatedBy: actor }) } };
    return this.write([item], now);
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

  /** The transaction items that write `items` and bump the version. */
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

  /** Runs `items` plus the version bump atomically; returns nothing new (read the version after). */
  async write(items: TransactWriteItem[], now: number): Promise<string> {
    await guard('TransactWriteItems policy', () =>
      this.db.client.send(new TransactWriteItemsCommand({ TransactItems: [...items, this.versionBump(now)] })),
    );
    return this.getPolicyVersion();
  }
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

function versionOf(item: Record<string, unknown> | undefined): string {
  const v = item?.version;
  return typeof v === 'number' || typeof v === 'string' ? String(v) : '0';
}

import { GetItemCommand, TransactWriteItemsCommand, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { Conflict } from '../../errors';
import { keys } from '../schema';
import { failedConditionIndex, fromItem, guard, queryPage, toItem, transact, values } from './db';
import { stringList, UserReader } from './users-read';
import { orgAliveCheck, orgIndexDelete, orgIndexPut } from './org-index';

const SITE_ADMIN = 'site-admin';
/** GSI1 partition of every profile that holds a site role. */
const SITE_ROLE_HOLDERS = 'SITEROLEHOLDERS';
/** The counter of site admins, kept in the same transactions as profile changes. */
const SITE_ADMIN_COUNTER_PK = 'SITE';
const SITE_ADMIN_COUNTER_SK = 'ADMINCOUNT';

/**
 * Users: one partition per user holds the site-role profile (`PROFILE`) and one
 * item per membership (`MEMBER#<org>`), so one Query loads a whole principal.
 * Membership items are also indexed in GSI1 under the org (`ORGMEMBERS#<org>`).
 */
export class UserRepo extends UserReader {
  /** Site roles of a user (empty when none were ever set). */
  async getSiteRoles(userId: string): Promise<string[]> {
    const out = await guard('GetItem profile', () =>
      this.db.client.send(
        new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.user(userId), sk: keys.userProfile() }), ConsistentRead: true }),
      ),
    );
    return out.Item ? stringList(fromItem(out.Item).siteRoles) : [];
  }

  /**
   * Replaces a user's site roles. Race-safe on two counts: the profile is written only
   * if it is still the version that was read (optimistic lock), and a counter of site
   * admins is updated in the same transaction, with a condition that it stays >= 1 when
   * an admin is removed — so two concurrent demotions can never remove the last admin.
   * With `expected`, also false unless the roles read are exactly those: the caller's
   * checks were made against them, and the optimistic lock carries that on to the write.
   * Returns false when the profile changed meanwhile; throws Conflict for the last admin.
   */
  async putSiteRoles(userId: string, roles: string[], now: number, expected?: readonly string[]): Promise<boolean> {
    const current = await guard('GetItem profile', () =>
      this.db.client.send(new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.user(userId), sk: keys.userProfile() }), ConsistentRead: true })),
    );
    const old = current.Item ? fromItem(current.Item) : undefined;
    const oldRoles = stringList(old?.siteRoles);
    const oldVersion = typeof old?.version === 'number' ? old.version : 0;
    if (expected !== undefined && (oldRoles.length !== expected.length || oldRoles.some((r, i) => r !== expected[i]))) return false;
    const wasAdmin = oldRoles.includes(SITE_ADMIN);
    const isAdmin = roles.includes(SITE_ADMIN);
    const items: TransactWriteItem[] = [
      {
        Put: {
          TableName: this.db.tableName,
          Item: toItem({
            pk: keys.user(userId), sk: keys.userProfile(), type: 'profile', userId, siteRoles: roles, updatedAt: now, version: oldVersion + 1,
            ...(roles.length > 0 ? { gsi1pk: SITE_ROLE_HOLDERS, gsi1sk: keys.user(userId) } : {}),
          }),
          // Optimistic lock: nobody changed this profile since it was read.
          ConditionExpression: old ? '#v = :v' : 'attribute_not_exists(pk)',
          ...(old ? { ExpressionAttributeNames: { '#v': 'version' }, ExpressionAttributeValues: values({ ':v': oldVersion }) } : {}),
        },
      },
    ];
    if (isAdmin !== wasAdmin) {
      items.push({
        Update: {
          TableName: this.db.tableName,
          Key: toItem({ pk: SITE_ADMIN_COUNTER_PK, sk: SITE_ADMIN_COUNTER_SK }),
          UpdateExpression: 'ADD #n :d',
          // Removing an admin must leave at least one (lock-out protection).
          ...(wasAdmin ? { ConditionExpression: '#n > :one' } : {}),
          ExpressionAttributeNames: { '#n': 'count' },
          ExpressionAttributeValues: values(wasAdmin ? { ':d': -1, ':one': 1 } : { ':d': 1 }),
        },
      });
    }
    try {
      await guard('TransactWriteItems profile', () => this.db.client.send(new TransactWriteItemsCommand({ TransactItems: items })));
      return true;
    } catch (err) {
      const idx = failedConditionIndex((err as { cause?: unknown }).cause);
      if (idx === 1) throw new Conflict('last-site-admin', 'the last site admin cannot be removed or demoted');
      if (idx === 0) return false;
      throw err;
    }
  }

  /** Users holding any site role (GSI1), paginated. */
  async listSiteRoleHolders(cursor?: string): Promise<{ items: { userId: string; siteRoles: string[] }[]; nextCursor?: string }> {
    return queryPage(
      this.db,
      'Query site role holders',
      { index: 'gsi1', partition: { name: 'gsi1pk', value: SITE_ROLE_HOLDERS }, ...(cursor ? { cursor } : {}) },
      (i) => ({ userId: String(i.userId), siteRoles: stringList(i.siteRoles) }),
    );
  }

  /** Members of an org (GSI1), paginated, ordered by user id. */
  async listMembers(orgId: string, options: { limit: number; cursor?: string }): Promise<{ items: { userId: string; roles: string[]; createdAt: number; updatedAt: number }[]; nextCursor?: string }> {
    return queryPage(
      this.db,
      'Query members',
      { index: 'gsi1', partition: { name: 'gsi1pk', value: keys.orgMembers(orgId) }, limit: options.limit, ...(options.cursor ? { cursor: options.cursor } : {}) },
      (i) => ({ userId: String(i.userId), roles: stringList(i.roles), createdAt: Number(i.createdAt), updatedAt: Number(i.updatedAt) }),
    );
  }

  /**
   * Creates or replaces a membership, only while the org exists and is not being deleted
   * (a condition on the org item in the same transaction, which also writes the org's
   * index item), and only if the membership is still what was read. Returns 'no-org' or
   * 'changed' when a condition failed.
   */
  async writeMembership(orgId: string, userId: string, roles: string[], now: number, expected: string[] | undefined): Promise<'ok' | 'no-org' | 'changed'> {
    const failed = await transact(this.db, 'TransactWriteItems membership', [
      orgAliveCheck(this.db, orgId),
      {
        Put: {
          TableName: this.db.tableName,
          Item: toItem(membershipItem(orgId, userId, roles, now)),
          // No lost update: the roles are still those the caller decided on.
          ConditionExpression: expected === undefined ? 'attribute_not_exists(pk)' : '#r = :r',
          ...(expected === undefined ? {} : { ExpressionAttributeNames: { '#r': 'roles' }, ExpressionAttributeValues: values({ ':r': expected }) }),
        },
      },
      orgIndexPut(this.db, orgId, 'MEMBER', userId),
    ]);
    if (!failed) return 'ok';
    return failed.has(0) ? 'no-org' : 'changed';
  }

  /** Deletes a membership and its index item; false when there was none. */
  async deleteMembership(orgId: string, userId: string): Promise<boolean> {
    const failed = await transact(this.db, 'TransactWriteItems delete membership', [
      {
        Delete: {
          TableName: this.db.tableName,
          Key: toItem({ pk: keys.user(userId), sk: keys.membershipSk(orgId) }),
          ConditionExpression: 'attribute_exists(pk)',
        },
      },
      orgIndexDelete(this.db, orgId, 'MEMBER', userId),
    ]);
    return !failed;
  }

  /** Removes a membership and its index item, whichever of them exists (the org-deletion cascade). */
  async removeMembership(orgId: string, userId: string): Promise<void> {
    await transact(this.db, 'TransactWriteItems remove membership', [
      { Delete: { TableName: this.db.tableName, Key: toItem({ pk: keys.user(userId), sk: keys.membershipSk(orgId) }) } },
      orgIndexDelete(this.db, orgId, 'MEMBER', userId),
    ]);
  }

  /** Creates or replaces a membership and its index item, with no check on the org (test and bootstrap seeding). */
  async putMembership(orgId: string, userId: string, roles: string[], now: number): Promise<void> {
    await transact(this.db, 'TransactWriteItems membership', [
      { Put: { TableName: this.db.tableName, Item: toItem(membershipItem(orgId, userId, roles, now)) } },
      orgIndexPut(this.db, orgId, 'MEMBER', userId),
    ]);
  }
}

/** The stored shape of a membership. */
export function membershipItem(orgId: string, userId: string, roles: string[], now: number) {
  return {
    pk: keys.user(userId),
    sk: keys.membershipSk(orgId),
    gsi1pk: keys.orgMembers(orgId),
    gsi1sk: keys.orgMemberSk(userId),
    type: 'membership',
    orgId,
    userId,
    roles,
    createdAt: now,
    updatedAt: now,
  };
}

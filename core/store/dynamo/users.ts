import { GetItemCommand, QueryCommand, TransactWriteItemsCommand, type QueryCommandOutput } from '@aws-sdk/client-dynamodb';
import { keys } from '../schema';
import type { UserRecord } from '../types';
import { type Db, fromItem, guard, toItem, values } from './db';

/**
 * Users: one partition per user holds the site-role profile (`PROFILE`) and one
 * item per membership (`MEMBER#<org>`), so one Query loads a whole principal.
 * Membership items are also indexed in GSI1 under the org (`ORGMEMBERS#<org>`).
 */
export class UserRepo {
  constructor(private readonly db: Db) {}

  /** Site roles and memberships of a user (one Query, paginated only past 1 MB). */
  async loadUser(userId: string): Promise<UserRecord> {
    const record: UserRecord = { userId, siteRoles: [], orgs: Object.create(null) as Record<string, string[]> };
    let startKey: QueryCommandOutput['LastEvaluatedKey'];
    do {
      const out: QueryCommandOutput = await guard('Query user', () =>
        this.db.client.send(
          new QueryCommand({
            TableName: this.db.tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: values({ ':pk': keys.user(userId) }),
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const raw of out.Items ?? []) {
        const item = fromItem(raw);
        if (item.sk === keys.userProfile()) record.siteRoles = stringList(item.siteRoles);
        else if (typeof item.sk === 'string' && item.sk.startsWith('MEMBER#') && typeof item.orgId === 'string') {
          record.orgs[item.orgId] = stringList(item.roles);
        }
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return record;
  }

  /** Site roles of a user (empty when none were ever set). */
  async getSiteRoles(userId: string): Promise<string[]> {
    const out = await guard('GetItem profile', () =>
      this.db.client.send(
        new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.user(userId), sk: keys.userProfile() }), ConsistentRead: true }),
      ),
    );
    return out.Item ? stringList(fromItem(out.Item).siteRoles) : [];
  }

  /** Replaces a user's site roles (test and bootstrap helper; the admin API adds its own guards). */
  async putSiteRoles(userId: string, roles: string[], now: number): Promise<void> {
    await guard('PutItem profile', () =>
      this.db.client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.db.tableName,
                Item: toItem({
                  pk: keys.user(userId), sk: keys.userProfile(), type: 'profile', userId, siteRoles: roles, updatedAt: now,
                  ...(roles.includes('site-admin') ? { gsi2pk: 'SITEADMINS', gsi2sk: keys.user(userId) } : {}),
                }),
              },
            },
          ],
        }),
      ),
    );
  }

  /** Creates or replaces a membership (test and bootstrap helper). */
  async putMembership(orgId: string, userId: string, roles: string[], now: number): Promise<void> {
    await guard('PutItem membership', () =>
      this.db.client.send(
        new TransactWriteItemsCommand({
          TransactItems: [{ Put: { TableName: this.db.tableName, Item: toItem(membershipItem(orgId, userId, roles, now)) } }],
        }),
      ),
    );
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

function stringList(v: unknown): string[] {
  if (v instanceof Set) v = [...v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

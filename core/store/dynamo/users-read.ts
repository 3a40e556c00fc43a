import { QueryCommand, type QueryCommandOutput } from '@aws-sdk/client-dynamodb';
import { keys } from '../schema';
import type { UserRecord } from '../types';
import { type Db, fromItem, guard, values } from './db';

/**
 * What the authorizer reads of a user: site roles and memberships, one partition per
 * user (layout in {@link UserRepo}, `./users`, which extends this with the admin side).
 */
export class UserReader {
  constructor(protected readonly db: Db) {}

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
}

/** The strings of a stored list or string set (anything else: none). */
export function stringList(v: unknown): string[] {
  if (v instanceof Set) v = [...v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

import { DeleteItemCommand, GetItemCommand, QueryCommand, TransactWriteItemsCommand, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { keys } from '../schema';
import { type Db, fromItem, guard, queryPage, toItem, values } from './db';
import { membershipItem } from './users';

/** An organization. */
export interface OrgRecord {
  id: string;
  name: string;
  createdAt: number;
  createdBy?: string;
}

/** Org ids: lower-case slug, 2..64 characters (they appear in keys, paths and ARNs). */
export const ORG_ID_RE = /^[a-z0-9][a-z0-9-]{1,63}$/;

/** Organizations: `ORG#<id>`/`ORG`, listed through GSI1 (`ORGS`). */
export class OrgRepo {
  constructor(private readonly db: Db) {}

  async getOrg(orgId: string): Promise<OrgRecord | undefined> {
    if (!ORG_ID_RE.test(orgId)) return undefined;
    const out = await guard('GetItem org', () =>
      this.db.client.send(new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.org(orgId), sk: keys.orgSk() }), ConsistentRead: true })),
    );
    return out.Item ? orgFromItem(fromItem(out.Item)) : undefined;
  }

  /** The transaction item that creates an org (fails if it exists). */
  createOrgItem(org: OrgRecord): TransactWriteItem {
    return {
      Put: {
        TableName: this.db.tableName,
        Item: toItem({ pk: keys.org(org.id), sk: keys.orgSk(), gsi1pk: keys.allOrgs(), gsi1sk: keys.org(org.id), type: 'org', ...org }),
        // Org ids are unique: never overwrite.
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  /** Creates an org and, optionally, its first member, atomically. */
  async createOrg(org: OrgRecord, firstMember?: { userId: string; roles: string[] }): Promise<void> {
    const items: TransactWriteItem[] = [this.createOrgItem(org)];
    if (firstMember) items.push({ Put: { TableName: this.db.tableName, Item: toItem(membershipItem(org.id, firstMember.userId, firstMember.roles, org.createdAt)) } });
    await guard('TransactWriteItems org', () => this.db.client.send(new TransactWriteItemsCommand({ TransactItems: items })));
  }

  /** All orgs (GSI1 `ORGS`), by id, paginated. */
  async listOrgs(options: { limit: number; cursor?: string }): Promise<{ items: OrgRecord[]; nextCursor?: string }> {
    return queryPage(
      this.db,
      'Query orgs',
      { index: 'gsi1', partition: { name: 'gsi1pk', value: keys.allOrgs() }, limit: options.limit, ...(options.cursor ? { cursor: options.cursor } : {}) },
      orgFromItem,
    );
  }

  /** Every item key in a GSI1 partition (used by the org-deletion cascade). */
  async gsi1Items(partition: string): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    let startKey: Record<string, import('@aws-sdk/client-dynamodb').AttributeValue> | undefined;
    do {
      const page = await guard('Query cascade', () =>
        this.db.client.send(
          new QueryCommand({ TableName: this.db.tableName, IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :k', ExpressionAttributeValues: values({ ':k': partition }), ExclusiveStartKey: startKey }),
        ),
      );
      for (const raw of page.Items ?? []) out.push(fromItem(raw));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  /** Deletes the org item itself (the last step of the cascade, so a retry can resume). */
  async deleteOrgItem(orgId: string): Promise<void> {
    await guard('DeleteItem org', () =>
      this.db.client.send(new DeleteItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.org(orgId), sk: keys.orgSk() }) })),
    );
  }
}

function orgFromItem(i: Record<string, unknown>): OrgRecord {
  return { id: String(i.id), name: String(i.name), createdAt: Number(i.createdAt), ...(typeof i.createdBy === 'string' ? { createdBy: i.createdBy } : {}) };
}

import { GetItemCommand, TransactWriteItemsCommand, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { keys } from '../schema';
import { type Db, fromItem, guard, toItem } from './db';
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
    if (!out.Item) return undefined;
    const i = fromItem(out.Item);
    return { id: String(i.id), name: String(i.name), createdAt: Number(i.createdAt), ...(typeof i.createdBy === 'string' ? { createdBy: i.createdBy } : {}) };
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
}

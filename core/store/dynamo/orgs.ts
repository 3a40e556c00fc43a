import { DeleteItemCommand, GetItemCommand, QueryCommand, type AttributeValue, type QueryCommandOutput, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { keys } from '../schema';
import { type Db, fromItem, guard, queryPage, toItem, transact, values } from './db';
import { orgIndexPut } from './org-index';
import { PolicyRepo } from './policy';
import { membershipItem } from './users';

/** An organization. */
export interface OrgRecord {
  id: string;
  name: string;
  createdAt: number;
  createdBy?: string;
}

/** What the org's partition indexes (see `org-index.ts`), as the deletion cascade reads it. */
export interface OrgChildren {
  members: string[];
  tokens: string[];
  invitations: string[];
  /** Every other item of the partition but the org item (pending-invitation guards). */
  others: { sk: string; invitationId?: string }[];
}

/** Org ids: lower-case slug, 2..64 characters (they appear in keys, paths and ARNs). */
export const ORG_ID_RE = /^[a-z0-9][a-z0-9-]{1,63}$/;

/**
 * Organizations: `ORG#<id>`/`ORG`, listed through GSI1 (`ORGS`). An org being deleted
 * carries `deletingAt` until its cascade is complete; it is absent to every reader but
 * the deletion itself (`getOrgState`), and a marker in the policy partition tells the
 * authorizers.
 */
export class OrgRepo {
  constructor(private readonly db: Db) {}

  /** The org, unless it does not exist or is being deleted. */
  async getOrg(orgId: string): Promise<OrgRecord | undefined> {
    const state = await this.getOrgState(orgId);
    return state && !state.deleting ? state.org : undefined;
  }

  /** The org and whether it is being deleted (strongly consistent). */
  async getOrgState(orgId: string): Promise<{ org: OrgRecord; deleting: boolean } | undefined> {
    if (!ORG_ID_RE.test(orgId)) return undefined;
    const out = await guard('GetItem org', () =>
      this.db.client.send(new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.org(orgId), sk: keys.orgSk() }), ConsistentRead: true })),
    );
    if (!out.Item) return undefined;
    const item = fromItem(out.Item);
    return { org: orgFromItem(item), deleting: item.deletingAt !== undefined };
  }

  /** The transaction item that creates an org (fails if it exists). */
  createOrgItem(org: OrgRecord): TransactWriteItem {
    return {
      Put: {
        TableName: this.db.tableName,
        Item: toItem({ pk: keys.org(org.id), sk: keys.orgSk(), gsi1pk: keys.allOrgs(), gsi1sk: keys.org(org.id), type: 'org', ...org }),
        // Org ids are unique: never overwrite (nor an org still being deleted).
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
  }

  /** Creates an org and, optionally, its first member, atomically. False when the id is taken. */
  async createOrg(org: OrgRecord, firstMember?: { userId: string; roles: string[] }): Promise<boolean> {
    const items: TransactWriteItem[] = [this.createOrgItem(org)];
    if (firstMember) {
      items.push({ Put: { TableName: this.db.tableName, Item: toItem(membershipItem(org.id, firstMember.userId, firstMember.roles, org.createdAt)) } });
      items.push(orgIndexPut(this.db, org.id, 'MEMBER', firstMember.userId));
    }
    const failed = await transact(this.db, 'TransactWriteItems org', items);
    return !failed?.has(0);
  }

  /** All orgs (GSI1 `ORGS`), by id, paginated; orgs being deleted are left out. */
  async listOrgs(options: { limit: number; cursor?: string }): Promise<{ items: OrgRecord[]; nextCursor?: string }> {
    return queryPage(
      this.db,
      'Query orgs',
      { index: 'gsi1', partition: { name: 'gsi1pk', value: keys.allOrgs() }, limit: options.limit, ...(options.cursor ? { cursor: options.cursor } : {}) },
      (i) => (i.deletingAt === undefined ? orgFromItem(i) : undefined),
    );
  }

  /** Every item in a GSI1 partition (the cascade's look-up of children written before org partitions indexed them). */
  async gsi1Items(partition: string): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
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

  /**
   * Marks the org as being deleted, atomically with its marker in the policy partition
   * and a policy version bump (so warm authorizers reload and see it). Idempotent: a
   * retried deletion keeps the first mark. False when the org does not exist.
   */
  async markDeleting(orgId: string, now: number, by: string): Promise<boolean> {
    const failed = await transact(this.db, 'TransactWriteItems mark org deleting', [
      {
        Update: {
          TableName: this.db.tableName,
          Key: toItem({ pk: keys.org(orgId), sk: keys.orgSk() }),
          UpdateExpression: 'SET deletingAt = if_not_exists(deletingAt, :now), deletingBy = if_not_exists(deletingBy, :by)',
          // Only an org that exists is marked (never re-create one as a deleting stub).
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: values({ ':now': now, ':by': by }),
        },
      },
      { Put: { TableName: this.db.tableName, Item: toItem({ pk: keys.policy(), sk: keys.deletingOrgSk(orgId), type: 'org-deleting', orgId, since: now }) } },
      new PolicyRepo(this.db).versionBump(now),
    ]);
    return !failed;
  }

  /** The org's indexed children (strongly consistent: nothing written before the mark is missed). */
  async children(orgId: string): Promise<OrgChildren> {
    const out: OrgChildren = { members: [], tokens: [], invitations: [], others: [] };
    let startKey: QueryCommandOutput['LastEvaluatedKey'];
    do {
      const page: QueryCommandOutput = await guard('Query org children', () =>
        this.db.client.send(
          new QueryCommand({ TableName: this.db.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: values({ ':pk': keys.org(orgId) }), ConsistentRead: true, ExclusiveStartKey: startKey }),
        ),
      );
      for (const raw of page.Items ?? []) {
        const i = fromItem(raw);
        const sk = String(i.sk);
        if (sk === keys.orgSk()) continue;
        if (i.type === 'org-index' && typeof i.childId === 'string') {
          if (i.kind === 'MEMBER') out.members.push(i.childId);
          else if (i.kind === 'TOKEN') out.tokens.push(i.childId);
          else if (i.kind === 'INVITE') out.invitations.push(i.childId);
          else out.others.push({ sk });
        } else out.others.push({ sk, ...(typeof i.invitationId === 'string' ? { invitationId: i.invitationId } : {}) });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  /** Deletes an item of the org's partition other than the org item (what the cascade left: stale guards). */
  async deleteChildItem(orgId: string, sk: string): Promise<void> {
    if (sk === keys.orgSk()) return;
    await guard('DeleteItem org child', () => this.db.client.send(new DeleteItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.org(orgId), sk }) })));
  }

  /**
   * The last step of a deletion: the org item and its marker go together (and the policy
   * version moves on), so until then a retried DELETE resumes the cascade and the id
   * cannot be taken again. False when the org was not being deleted (already finished).
   */
  async finishDeletion(orgId: string, now: number): Promise<boolean> {
    const failed = await transact(this.db, 'TransactWriteItems finish org deletion', [
      {
        Delete: {
          TableName: this.db.tableName,
          Key: toItem({ pk: keys.org(orgId), sk: keys.orgSk() }),
          // Only the org this deletion marked: never one created again since.
          ConditionExpression: 'attribute_exists(deletingAt)',
        },
      },
      { Delete: { TableName: this.db.tableName, Key: toItem({ pk: keys.policy(), sk: keys.deletingOrgSk(orgId) }) } },
      new PolicyRepo(this.db).versionBump(now),
    ]);
    return !failed;
  }
}

function orgFromItem(i: Record<string, unknown>): OrgRecord {
  return { id: String(i.id), name: String(i.name), createdAt: Number(i.createdAt), ...(typeof i.createdBy === 'string' ? { createdBy: i.createdBy } : {}) };
}

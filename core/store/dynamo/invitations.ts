import { GetItemCommand, UpdateItemCommand, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { StoreError } from '../../errors';
import { keys } from '../schema';
import { type Db, fromItem, guard, isConditionFailure, queryPage, toItem, transact, values } from './db';
import { orgAliveCheck, orgIndexDelete, orgIndexPut } from './org-index';
import { membershipItem } from './users';

export type InvitationStatus = 'pending' | 'accepted' | 'declined' | 'revoked' | 'expired';

/** A stored invitation. `status` is what was written; `expired` is derived on read. */
export interface InvitationRecord {
  id: string;
  orgId: string;
  email: string;
  role: string;
  status: Exclude<InvitationStatus, 'expired'>;
  senderId: string | null;
  senderTokenId?: string;
  createdAt: number;
  expiresAt: number;
  decidedAt?: number;
  acceptedBy?: string;
}

/** Why a conditional invitation write failed. */
export type InvitationWriteFailure = 'pending-exists' | 'not-pending' | 'expired' | 'already-member' | 'not-found';

/**
 * Invitations: `INVITE#<id>`/`INVITE`, listed by org (GSI1 `ORGINVITES#<org>`) and by
 * email (GSI2 `EMAILINVITES#<email>`). A guard item `ORG#<org>`/`PENDINGINVITE#<email>`
 * makes "one pending invitation per (org, email)" a condition DynamoDB enforces.
 */
export class InvitationRepo {
  constructor(private readonly db: Db) {}

  private item(r: InvitationRecord) {
    const order = `${String(r.createdAt).padStart(12, '0')}#${r.id}`;
    return {
      pk: keys.invitation(r.id),
      sk: keys.invitationSk(),
      type: 'invitation',
      gsi1pk: keys.orgInvitations(r.orgId),
      gsi1sk: order,
      gsi2pk: keys.emailInvitations(r.email),
      gsi2sk: order,
      ...r,
    };
  }

  /** Deletes the (org, email) guard, but only the one that belongs to this invitation. */
  private releaseGuard(r: InvitationRecord): TransactWriteItem {
    return {
      Delete: {
        TableName: this.db.tableName,
        Key: toItem({ pk: keys.org(r.orgId), sk: keys.pendingInviteSk(r.email) }),
        ConditionExpression: 'attribute_not_exists(pk) OR invitationId = :id',
        ExpressionAttributeValues: values({ ':id': r.id }),
      },
    };
  }

  /**
   * Moves a pending invitation on: `status` and `decidedAt`, plus `extra` (the name and
   * value of who decided), under `condition` (which may read `:now`).
   */
  private decide(r: InvitationRecord, status: 'accepted' | 'declined' | 'revoked', now: number, extra: [string, string], condition: string): TransactWriteItem {
    return {
      Update: {
        TableName: this.db.tableName,
        Key: toItem({ pk: keys.invitation(r.id), sk: keys.invitationSk() }),
        UpdateExpression: `SET #s = :status, decidedAt = :now, ${extra[0]} = :by`,
        ConditionExpression: condition,
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: values({ ':status': status, ':pending': 'pending', ':now': now, ':by': extra[1] }),
      },
    };
  }

  /**
   * Creates a pending invitation, its guard and its org index item atomically, while the
   * org is alive; `pending-exists` when a live one is there, `not-found` without the org.
   */
  async create(r: InvitationRecord, now: number): Promise<InvitationWriteFailure | undefined> {
    const failed = await transact(this.db, 'TransactWriteItems invitation', [
      {
        Put: {
          TableName: this.db.tableName,
          Item: toItem({ pk: keys.org(r.orgId), sk: keys.pendingInviteSk(r.email), type: 'pending-invite', invitationId: r.id, orgId: r.orgId, email: r.email, expiresAt: r.expiresAt }),
          // One pending invitation per (org, email); an expired guard no longer blocks.
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAt <= :now',
          ExpressionAttributeValues: values({ ':now': now }),
        },
      },
      // Ids are random; never overwrite one.
      { Put: { TableName: this.db.tableName, Item: toItem(this.item(r)), ConditionExpression: 'attribute_not_exists(pk)' } },
      orgAliveCheck(this.db, r.orgId),
      orgIndexPut(this.db, r.orgId, 'INVITE', r.id),
    ]);
    if (!failed) return undefined;
    if (failed.has(2)) return 'not-found';
    if (failed.has(0)) return 'pending-exists';
    // A 128-bit id collision: practically impossible; fail closed rather than overwrite.
    throw new StoreError('invitation-id-collision', 'invitation id collision, try again');
  }

  async get(id: string): Promise<InvitationRecord | undefined> {
    const out = await guard('GetItem invitation', () =>
      this.db.client.send(new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.invitation(id), sk: keys.invitationSk() }), ConsistentRead: true })),
    );
    return out.Item ? fromInvitation(fromItem(out.Item)) : undefined;
  }

  /** Lists by org (GSI1) or by email (GSI2), newest first. */
  async list(by: { orgId: string } | { email: string }, options: { limit: number; cursor?: string }): Promise<{ items: InvitationRecord[]; nextCursor?: string }> {
    const [index, value] = 'orgId' in by ? (['gsi1', keys.orgInvitations(by.orgId)] as const) : (['gsi2', keys.emailInvitations(by.email)] as const);
    return queryPage(
      this.db,
      'Query invitations',
      { index, partition: { name: `${index}pk`, value }, newestFirst: true, limit: options.limit, ...(options.cursor ? { cursor: options.cursor } : {}) },
      fromInvitation,
    );
  }

  /**
   * Accepts atomically: the invitation must still be pending and unexpired, the user
   * must not be a member yet (the membership is created with the stored role, never
   * one from the request), the org must be alive (the membership is indexed in it), and
   * the guard is released. One transaction, so ten racing accepts yield exactly one
   * membership.
   */
  async accept(r: InvitationRecord, userId: string, now: number): Promise<InvitationWriteFailure | undefined> {
    const items: TransactWriteItem[] = [
      // Single use, and never after expiry even while the item still exists.
      this.decide(r, 'accepted', now, ['acceptedBy', userId], '#s = :pending AND expiresAt > :now'),
      {
        Put: {
          TableName: this.db.tableName,
          Item: toItem(membershipItem(r.orgId, userId, [r.role], now)),
          // An existing member keeps their roles: accepting is not a way to change them.
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      this.releaseGuard(r),
      orgAliveCheck(this.db, r.orgId),
      orgIndexPut(this.db, r.orgId, 'MEMBER', userId),
    ];
    const failed = await transact(this.db, 'TransactWriteItems accept', items);
    if (!failed) return undefined;
    // An org that is gone or being deleted takes its invitations with it.
    if (failed.has(3)) return 'not-found';
    if (failed.has(0)) {
      // Why the invitation was no longer acceptable: read it again (strongly consistent).
      const current = await this.get(r.id);
      if (!current || current.status === 'revoked') return 'not-found';
      if (current.status === 'pending' && current.expiresAt <= now) return 'expired';
      return 'not-pending';
    }
    if (failed.has(1)) return 'already-member';
    return 'not-pending';
  }

  /**
   * The org-deletion cascade's step for one invitation of `orgId`: a pending one is
   * revoked (its guard released), every one leaves the org's listing (GSI1), so an org
   * created again with the id starts with none; then its org index item goes.
   */
  async retireForOrg(id: string, orgId: string, now: number, by: string): Promise<void> {
    const r = await this.get(id);
    if (r && r.orgId === orgId) {
      if (r.status === 'pending') await this.close(r, 'revoked', now, by);
      try {
        await guard('UpdateItem invitation', () =>
          this.db.client.send(
            new UpdateItemCommand({
              TableName: this.db.tableName,
              Key: toItem({ pk: keys.invitation(id), sk: keys.invitationSk() }),
              UpdateExpression: 'REMOVE gsi1pk, gsi1sk',
              // Only an invitation of this org (the id came from its index or listing).
              ConditionExpression: 'attribute_exists(pk) AND orgId = :org',
              ExpressionAttributeValues: values({ ':org': orgId }),
            }),
          ),
        );
      } catch (err) {
        if (!isConditionFailure((err as { cause?: unknown }).cause)) throw err;
      }
    }
    await transact(this.db, 'TransactWriteItems org index', [orgIndexDelete(this.db, orgId, 'INVITE', id)]);
  }

  /** Moves a pending invitation to `declined` or `revoked` and releases its guard. */
  async close(r: InvitationRecord, status: 'declined' | 'revoked', now: number, by: string): Promise<InvitationWriteFailure | undefined> {
    const failed = await transact(this.db, 'TransactWriteItems close invitation', [
      this.decide(r, status, now, ['decidedBy', by], '#s = :pending'),
      this.releaseGuard(r),
    ]);
    return failed ? 'not-pending' : undefined;
  }
}

function fromInvitation(i: Record<string, unknown>): InvitationRecord | undefined {
  if (i.type !== 'invitation' || typeof i.id !== 'string' || typeof i.orgId !== 'string' || typeof i.email !== 'string') return undefined;
  const status = i.status;
  if (status !== 'pending' && status !== 'accepted' && status !== 'declined' && status !== 'revoked') return undefined;
  return {
    id: i.id,
    orgId: i.orgId,
    email: i.email,
    role: String(i.role),
    status,
    senderId: typeof i.senderId === 'string' ? i.senderId : null,
    ...(typeof i.senderTokenId === 'string' ? { senderTokenId: i.senderTokenId } : {}),
    createdAt: Number(i.createdAt),
    expiresAt: Number(i.expiresAt),
    ...(typeof i.decidedAt === 'number' ? { decidedAt: i.decidedAt } : {}),
    ...(typeof i.acceptedBy === 'string' ? { acceptedBy: i.acceptedBy } : {}),
  };
}

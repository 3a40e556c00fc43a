import { PutItemCommand, UpdateItemCommand, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { keys } from '../schema';
import type { AccessLogEntry, TokenRecord } from '../types';
import { NotFound, StoreError } from '../../errors';
import { type Db, guard, isConditionFailure, queryPage, toItem, transact, values } from './db';
import { orgAliveCheck, orgIndexDelete, orgIndexPut } from './org-index';
import { tokenFromItem, TokenReader } from './tokens-read';

export { ACCESS_LOG_TTL_SECONDS, tokenFromItem } from './tokens-read';


/**
 * Tokens: `TOKEN#<id>`/`TOKEN` holds the record (GSI1 by holder, GSI2 all tokens);
 * the same partition holds its access log (`LOG#<time>#…`), newest first by sort key.
 */
export class TokenRepo extends TokenReader {
  /**
   * Creates a token record; the id must be new (condition: no item with that key). An org
   * token is written only while its org exists and is not being deleted, together with
   * its index item in the org's partition (NotFound otherwise).
   */
  async createToken(record: TokenRecord): Promise<void> {
    const items = createTokenItems(this.db, record);
    if (items.length === 1) {
      // One item: a plain conditional put.
      await guard('PutItem token', () => this.db.client.send(new PutItemCommand({ ...items[0]!.Put!, Item: items[0]!.Put!.Item! })));
      return;
    }
    const failed = await transact(this.db, 'TransactWriteItems token', items);
    // An org token's first item is the org-alive check: the org is gone or going.
    if (failed?.has(0)) throw new NotFound();
    if (failed) throw new StoreError('token-id-collision', 'token id collision, try again');
  }

  /**
   * The org-deletion cascade's step for one org token: revoked (a revocation already
   * there is kept), its rotation grace ended, and out of the org's listing (GSI1), so an
   * org created again with the id starts with none; it stays in the site-wide view
   * (GSI2). Then its org index item goes.
   */
  async retireOrgToken(tokenId: string, orgId: string, at: number, by: string): Promise<void> {
    try {
      await guard('UpdateItem retire token', () =>
        this.db.client.send(
          new UpdateItemCommand({
            TableName: this.db.tableName,
            Key: toItem({ pk: keys.token(tokenId), sk: keys.tokenSk() }),
            UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :at), revokedBy = if_not_exists(revokedBy, :by) REMOVE gsi1pk, gsi1sk, previousSecretHash, previousValidUntil',
            // Only a token of this org (the id came from its index or listing).
            ConditionExpression: 'attribute_exists(pk) AND orgId = :org',
            ExpressionAttributeValues: values({ ':at': at, ':by': by, ':org': orgId }),
          }),
        ),
      );
    } catch (err) {
      if (!isConditionFailure((err as { cause?: unknown }).cause)) throw err;
    }
    await transact(this.db, 'TransactWriteItems org index', [orgIndexDelete(this.db, orgId, 'TOKEN', tokenId)]);
  }

  /**
   * Lists tokens by holder (GSI1) or all tokens (GSI2), newest first. The cursor is
   * pinned to the listing's partition, so it cannot be replayed against another one.
   */
  async listTokens(
    by: { index: 'gsi1' | 'gsi2'; key: string },
    options: { limit: number; cursor?: string },
  ): Promise<{ items: TokenRecord[]; nextCursor?: string }> {
    return queryPage(
      this.db,
      'Query tokens',
      { index: by.index, partition: { name: `${by.index}pk`, value: by.key }, newestFirst: true, limit: options.limit, ...(options.cursor ? { cursor: options.cursor } : {}) },
      tokenFromItem,
    );
  }

  /** Marks a token revoked. Conditional: it exists and is not revoked yet. Returns false otherwise. */
  async revokeToken(tokenId: string, at: number, by: string): Promise<boolean> {
    try {
      await guard('UpdateItem revoke', () =>
        this.db.client.send(
          new UpdateItemCommand({
            TableName: this.db.tableName,
            Key: toItem({ pk: keys.token(tokenId), sk: keys.tokenSk() }),
            UpdateExpression: 'SET revokedAt = :at, revokedBy = :by REMOVE previousSecretHash, previousValidUntil',
            // Only a live token can be revoked, once.
            ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(revokedAt)',
            ExpressionAttributeValues: values({ ':at': at, ':by': by }),
          }),
        ),
      );
      return true;
    } catch (err) {
      if (isConditionFailure((err as { cause?: unknown }).cause)) return false;
      throw err;
    }
  }

  /**
   * Replaces the secret hash. Conditional on the hash being the one the caller read
   * (no lost update between two rotations), the token not revoked and not expired.
   * The old hash stays valid until `previousValidUntil` only when a grace was asked for.
   */
  async rotateToken(tokenId: string, expectedHash: string, newHash: string, now: number, previousValidUntil?: number): Promise<boolean> {
    const grace = previousValidUntil !== undefined && previousValidUntil > now;
    try {
      await guard('UpdateItem rotate', () =>
        this.db.client.send(
          new UpdateItemCommand({
            TableName: this.db.tableName,
            Key: toItem({ pk: keys.token(tokenId), sk: keys.tokenSk() }),
            UpdateExpression: grace
              ? 'SET secretHash = :new, previousSecretHash = :old, previousValidUntil = :until, rotatedAt = :now'
              : 'SET secretHash = :new, rotatedAt = :now REMOVE previousSecretHash, previousValidUntil',
            ConditionExpression: 'secretHash = :old AND attribute_not_exists(revokedAt) AND expiresAt > :now',
            ExpressionAttributeValues: values({ ':new': newHash, ':old': expectedHash, ':now': now, ...(grace ? { ':until': previousValidUntil } : {}) }),
          }),
        ),
      );
      return true;
    } catch (err) {
      if (isConditionFailure((err as { cause?: unknown }).cause)) return false;
      throw err;
    }
  }

  /** A token's access log, newest first. */
  async listAccessLog(tokenId: string, options: { limit: number; cursor?: string }): Promise<{ items: AccessLogEntry[]; nextCursor?: string }> {
    return queryPage(
      this.db,
      'Query access log',
      { partition: { name: 'pk', value: keys.token(tokenId) }, range: { beginsWith: keys.accessLogPrefix() }, newestFirst: true, limit: options.limit, ...(options.cursor ? { cursor: options.cursor } : {}) },
      (i) => ({
        at: Number(i.at),
        route: String(i.route ?? ''),
        ...(typeof i.sourceIp === 'string' ? { sourceIp: i.sourceIp } : {}),
        outcome: i.outcome as AccessLogEntry['outcome'],
        reason: String(i.reason ?? ''),
        ...(typeof i.count === 'number' ? { count: i.count } : {}),
        ...(typeof i.lastAt === 'number' ? { lastAt: i.lastAt } : {}),
      }),
    );
  }

}

/** The stored shape of a token (keys and indexes derived from the record). */
export function tokenItem(r: TokenRecord) {
  const holder =
    r.kind === 'personal' ? keys.tokensByOwner(r.ownerId ?? '') : r.kind === 'org' ? keys.tokensByOrg(r.orgId ?? '') : keys.tokensSite();
  const order = `${String(r.createdAt).padStart(12, '0')}#${r.id}`;
  return {
    pk: keys.token(r.id),
    sk: keys.tokenSk(),
    type: 'token',
    gsi1pk: holder,
    gsi1sk: order,
    gsi2pk: keys.allTokens(),
    gsi2sk: order,
    ...r,
  };
}

/**
 * The transaction items that create a token: the token itself (never overwriting one),
 * and for an org token first a check that the org is alive (not deleted, not being
 * deleted) and then its index item in the org's partition, which the deletion cascade
 * reads. Every path that creates a token writes these.
 */
export function createTokenItems(db: Db, record: TokenRecord): TransactWriteItem[] {
  // Never overwrite an existing token (id collision or replay).
  const put: TransactWriteItem = { Put: { TableName: db.tableName, Item: toItem(tokenItem(record)), ConditionExpression: 'attribute_not_exists(pk)' } };
  if (record.kind !== 'org') return [put];
  const orgId = record.orgId ?? '';
  return [orgAliveCheck(db, orgId), put, orgIndexPut(db, orgId, 'TOKEN', record.id)];
}

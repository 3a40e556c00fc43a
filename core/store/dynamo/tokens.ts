import { GetItemCommand, PutItemCommand, UpdateItemCommand, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { createHash, randomBytes } from 'node:crypto';
import { keys } from '../schema';
import type { AccessLogAggregate, AccessLogEntry, TokenRecord } from '../types';
import { NotFound, StoreError } from '../../errors';
import { type Db, fromItem, guard, isConditionFailure, queryPage, toItem, transact, values } from './db';
import { orgAliveCheck, orgIndexDelete, orgIndexPut } from './org-index';

/** Access-log entries live 90 days (DynamoDB TTL). */
export const ACCESS_LOG_TTL_SECONDS = 90 * 24 * 3600;

/**
 * Tokens: `TOKEN#<id>`/`TOKEN` holds the record (GSI1 by holder, GSI2 all tokens);
 * the same partition holds its access log (`LOG#<time>#…`), newest first by sort key.
 */
export class TokenRepo {
  constructor(private readonly db: Db) {}

  async getToken(tokenId: string): Promise<TokenRecord | undefined> {
    const out = await guard('GetItem token', () =>
      this.db.client.send(
        new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.token(tokenId), sk: keys.tokenSk() }), ConsistentRead: true }),
      ),
    );
    return out.Item ? tokenFromItem(fromItem(out.Item)) : undefined;
  }

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
   * Appends an access-log entry. With `dedupeKey` the sort key is deterministic and the
   * write is conditional, so concurrent containers record a use once per window.
   */
  async recordTokenAccess(tokenId: string, entry: AccessLogEntry, dedupeKey?: string): Promise<void> {
    const at = new Date(entry.at * 1000).toISOString();
    const suffix = dedupeKey ?? randomBytes(6).toString('hex');
    try {
      await guard('PutItem access log', () =>
        this.db.client.send(
          new PutItemCommand({
            TableName: this.db.tableName,
            Item: toItem({
              pk: keys.token(tokenId), sk: keys.accessLogSk(at, suffix), type: 'access', tokenId,
              ...entry, expiresAt: entry.at + ACCESS_LOG_TTL_SECONDS,
            }),
            // Deduplicated entries are written once per window.
            ConditionExpression: dedupeKey ? 'attribute_not_exists(pk)' : undefined,
          }),
        ),
      );
    } catch (err) {
      if (!isConditionFailure((err as { cause?: unknown }).cause)) throw err;
    }
  }

  /**
   * Adds failed attempts to their aggregate entry: one item per (token, reason, source
   * IP, minute), whatever the number of attempts or containers, so a flood of forged
   * secrets for a public token id costs a bounded number of items. The sort key is
   * derived from the aggregate key (the minute first, so the log stays in time order);
   * `count` is added, never set, so concurrent writers sum up.
   */
  async recordTokenFailures(a: AccessLogAggregate): Promise<void> {
    const minute = new Date(a.minute * 1000).toISOString();
    const key = createHash('sha256').update(`${a.reason}\u0000${a.sourceIp ?? ''}`).digest('hex').slice(0, 24);
    await guard('UpdateItem access log', () =>
      this.db.client.send(
        new UpdateItemCommand({
          TableName: this.db.tableName,
          Key: toItem({ pk: keys.token(a.tokenId), sk: keys.accessLogSk(minute, `fail-${key}`) }),
          UpdateExpression:
            'SET #type = :type, tokenId = :tokenId, #at = if_not_exists(#at, :first), lastAt = :last, route = if_not_exists(route, :route), ' +
            'outcome = :outcome, reason = :reason, expiresAt = if_not_exists(expiresAt, :expires)' +
            (a.sourceIp !== undefined ? ', sourceIp = :ip' : '') +
            ' ADD #count :n',
          ExpressionAttributeNames: { '#type': 'type', '#at': 'at', '#count': 'count' },
          ExpressionAttributeValues: values({
            ':type': 'access', ':tokenId': a.tokenId, ':first': a.firstAt, ':last': a.lastAt, ':route': a.route,
            ':outcome': 'unauthorized', ':reason': a.reason, ':expires': a.firstAt + ACCESS_LOG_TTL_SECONDS, ':n': a.count,
            ...(a.sourceIp !== undefined ? { ':ip': a.sourceIp } : {}),
          }),
        }),
      ),
    );
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

  /** Sets lastUsedAt only when it is absent or older than `olderThan`: at most one write per window. */
  async touchTokenLastUsed(tokenId: string, at: number, olderThan: number): Promise<void> {
    try {
      await guard('UpdateItem lastUsedAt', () =>
        this.db.client.send(
          new UpdateItemCommand({
            TableName: this.db.tableName,
            Key: toItem({ pk: keys.token(tokenId), sk: keys.tokenSk() }),
            UpdateExpression: 'SET lastUsedAt = :at',
            // Exists (never re-create a deleted token) and was not touched within the window.
            ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(lastUsedAt) OR lastUsedAt < :older)',
            ExpressionAttributeValues: values({ ':at': at, ':older': olderThan }),
          }),
        ),
      );
    } catch (err) {
      if (!isConditionFailure((err as { cause?: unknown }).cause)) throw err;
    }
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

/** Reads a token record from a stored item, ignoring key attributes. */
export function tokenFromItem(item: Record<string, unknown>): TokenRecord | undefined {
  if (item.type !== 'token' || typeof item.id !== 'string' || typeof item.secretHash !== 'string') return undefined;
  const kind = item.kind;
  if (kind !== 'personal' && kind !== 'org' && kind !== 'site') return undefined;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const scopes = item.scopes instanceof Set ? [...item.scopes] : item.scopes;
  return {
    id: item.id,
    kind,
    name: str(item.name) ?? '',
    ownerId: str(item.ownerId),
    orgId: str(item.orgId),
    scopes: Array.isArray(scopes) ? scopes.filter((s): s is string => typeof s === 'string') : undefined,
    secretHash: item.secretHash,
    previousSecretHash: str(item.previousSecretHash),
    previousValidUntil: num(item.previousValidUntil),
    createdAt: num(item.createdAt) ?? 0,
    expiresAt: num(item.expiresAt) ?? 0,
    lastUsedAt: num(item.lastUsedAt),
    revokedAt: num(item.revokedAt),
    createdBy: str(item.createdBy),
    rootUserId: str(item.rootUserId),
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

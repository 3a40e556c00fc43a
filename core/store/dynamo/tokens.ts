import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { keys } from '../schema';
import type { AccessLogEntry, TokenRecord } from '../types';
import { type Db, fromItem, guard, isConditionFailure, queryPage, toItem, values } from './db';

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

  /** Creates a token record; the id must be new (condition: no item with that key). */
  async createToken(record: TokenRecord): Promise<void> {
    await guard('PutItem token', () =>
      this.db.client.send(
        new PutItemCommand({
          TableName: this.db.tableName,
          Item: toItem(tokenItem(record)),
          // Never overwrite an existing token (id collision or replay).
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
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
      { partition: { name: 'pk', value: keys.token(tokenId) }, sortCondition: 'begins_with(sk, :log)', values: { ':log': 'LOG#' }, newestFirst: true, limit: options.limit, ...(options.cursor ? { cursor: options.cursor } : {}) },
      (i) => ({
        at: Number(i.at),
        route: String(i.route ?? ''),
        ...(typeof i.sourceIp === 'string' ? { sourceIp: i.sourceIp } : {}),
        outcome: i.outcome as AccessLogEntry['outcome'],
        reason: String(i.reason ?? ''),
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

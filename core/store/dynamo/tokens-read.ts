import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { createHash, randomBytes } from 'node:crypto';
import { keys } from '../schema';
import type { AccessLogAggregate, AccessLogEntry, TokenRecord } from '../types';
import { type Db, fromItem, guard, isConditionFailure, toItem, values } from './db';

/** Access-log entries live 90 days (DynamoDB TTL). */
export const ACCESS_LOG_TTL_SECONDS = 90 * 24 * 3600;

/**
 * What the authorizer does with tokens: read one by id, and write its telemetry (access
 * log entries, failure aggregates, `lastUsedAt`). Layout in {@link TokenRepo} (`./tokens`),
 * which extends this with the admin side.
 */
export class TokenReader {
  constructor(protected readonly db: Db) {}

  async getToken(tokenId: string): Promise<TokenRecord | undefined> {
    const out = await guard('GetItem token', () =>
      this.db.client.send(
        new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.token(tokenId), sk: keys.tokenSk() }), ConsistentRead: true }),
      ),
    );
    return out.Item ? tokenFromItem(fromItem(out.Item)) : undefined;
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

import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { NotFound, StoreError } from '../../errors';
import { keys } from '../schema';
import type { TokenRecord } from '../types';
import { type Db, fromItem, guard, toItem, transact, values } from './db';
import { createTokenItems } from './tokens';

/** A remembered Idempotency-Key: which token it created, and that token's sealed secret. */
export interface IdempotencyRecord {
  /** Derived from the key and the caller; the key itself is never stored. */
  lookup: string;
  /** Hash of the request (method, path, body) the key was first used with. */
  fingerprint: string;
  tokenId: string;
  /** The secret, sealed under a key only the client can derive. */
  sealed: string;
  createdAt: number;
  /** Epoch seconds; the DynamoDB TTL attribute. */
  expiresAt: number;
}

/** Idempotency records of token creation: `IDEMPOTENCY#<lookup>`/`IDEMPOTENCY`. */
export class IdempotencyRepo {
  constructor(private readonly db: Db) {}

  /** The live record for `lookup`; an expired one (TTL deletes days late) is treated as absent. */
  async get(lookup: string, now: number): Promise<IdempotencyRecord | undefined> {
    const out = await guard('GetItem idempotency', () =>
      this.db.client.send(new GetItemCommand({ TableName: this.db.tableName, Key: toItem({ pk: keys.idempotency(lookup), sk: keys.idempotencySk() }), ConsistentRead: true })),
    );
    if (!out.Item) return undefined;
    const i = fromItem(out.Item);
    if (typeof i.fingerprint !== 'string' || typeof i.tokenId !== 'string' || typeof i.sealed !== 'string' || typeof i.expiresAt !== 'number') return undefined;
    if (!(i.expiresAt > now)) return undefined;
    return { lookup, fingerprint: i.fingerprint, tokenId: i.tokenId, sealed: i.sealed, createdAt: Number(i.createdAt), expiresAt: i.expiresAt };
  }

  /**
   * Stores a new token and the record of the key that created it, in one transaction.
   * 'key-taken' when a live record for the key exists (another request with the same
   * key won): then nothing was written.
   */
  async createTokenOnce(token: TokenRecord, record: IdempotencyRecord, now: number): Promise<'created' | 'key-taken'> {
    const failed = await transact(this.db, 'TransactWriteItems idempotent token', [
      {
        Put: {
          TableName: this.db.tableName,
          Item: toItem({ pk: keys.idempotency(record.lookup), sk: keys.idempotencySk(), type: 'idempotency', ...record }),
          // One token per key: only a record that has expired (TTL deletes late) may be replaced.
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAt <= :now',
          ExpressionAttributeValues: values({ ':now': now }),
        },
      },
      // The token exactly as every other creation writes it (an org token: only while its org is alive).
      ...createTokenItems(this.db, token),
    ]);
    if (!failed) return 'created';
    if (failed.has(0)) return 'key-taken';
    if (token.kind === 'org' && failed.has(1)) throw new NotFound();
    throw new StoreError('token-id-collision', 'token id collision, try again');
  }
}

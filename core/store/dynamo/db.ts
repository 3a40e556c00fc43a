import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  type AttributeValue,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { GatehouseError, InvalidInput, StoreError } from '../../errors';

/** The table an adapter works on. */
export interface Db {
  client: DynamoDBClient;
  tableName: string;
}

export type Item = Record<string, unknown>;

/** Marshalls a plain item, dropping undefined fields. */
export function toItem(item: Item): Record<string, AttributeValue> {
  return marshall(item, { removeUndefinedValues: true, convertClassInstanceToMap: false });
}

/** Unmarshalls an item from DynamoDB. */
export function fromItem(item: Record<string, AttributeValue>): Item {
  return unmarshall(item);
}

/** Marshalls expression attribute values. */
export function values(v: Item): Record<string, AttributeValue> {
  return marshall(v, { removeUndefinedValues: true });
}

/** True for a failed condition check (single write or inside a transaction). */
export function isConditionFailure(err: unknown): boolean {
  if (err instanceof ConditionalCheckFailedException) return true;
  if (err instanceof TransactionCanceledException) {
    return (err.CancellationReasons ?? []).some((r) => r.Code === 'ConditionalCheckFailed');
  }
  return false;
}

/** Index of the first transaction item whose condition failed, or -1. */
export function failedConditionIndex(err: unknown): number {
  if (!(err instanceof TransactionCanceledException)) return -1;
  return (err.CancellationReasons ?? []).findIndex((r) => r.Code === 'ConditionalCheckFailed');
}

/** Wraps any non-domain failure as a StoreError so callers fail closed. */
export async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // Domain errors (a bad cursor, a failed condition mapped by the caller) pass through.
    if (err instanceof GatehouseError) throw err;
    const name = (err as { name?: string })?.name ?? 'Error';
    throw new StoreError('store-unavailable', `DynamoDB ${what} failed: ${name}`, { cause: err });
  }
}

/** Retries of a transaction cancelled by a conflicting concurrent transaction. */
const MAX_CONFLICT_RETRIES = 4;

/**
 * Runs a transaction (through {@link guard}). Returns undefined on success, or the
 * indexes of the items whose condition failed. A transaction that lost a race with
 * another one on the same items (`TransactionConflict`, as racing accepts do on real
 * DynamoDB) is retried a few times with jitter, so the loser sees the winner's write
 * and fails its condition instead of surfacing a 503.
 */
export async function transact(db: Db, what: string, items: TransactWriteItem[]): Promise<Set<number> | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      await guard(what, () => db.client.send(new TransactWriteItemsCommand({ TransactItems: items })));
      return undefined;
    } catch (err) {
      const e = (err as { cause?: unknown }).cause ?? err;
      if (!(e instanceof TransactionCanceledException)) throw err;
      const reasons = e.CancellationReasons ?? [];
      const failed = new Set(reasons.flatMap((r, i) => (r.Code === 'ConditionalCheckFailed' ? [i] : [])));
      if (failed.size > 0) return failed;
      if (attempt < MAX_CONFLICT_RETRIES && reasons.some((r) => r.Code === 'TransactionConflict')) {
        await new Promise((resolve) => setTimeout(resolve, 10 + Math.floor(Math.random() * 40 * (attempt + 1))));
        continue;
      }
      throw err;
    }
  }
}

/** Opaque pagination cursor from a LastEvaluatedKey (base64url JSON). */
export function encodeCursor(key: Record<string, AttributeValue> | undefined): string | undefined {
  if (!key) return undefined;
  return Buffer.from(JSON.stringify(unmarshall(key)), 'utf8').toString('base64url');
}

/**
 * The sort-key condition of a Query, as data: it builds the key condition and bounds
 * the cursors the query accepts, so the two cannot drift apart.
 */
export type SortRange = { beginsWith: string } | { between: [string, string] };

/** DynamoDB's limit for a sort key value (a partition key may be 2048; ours are all short). */
const MAX_KEY_BYTES = 1024;

/**
 * Decodes a cursor. It is hostile input, checked against the query it will start before
 * anything is sent, so DynamoDB never sees a start key it would refuse: exactly the
 * query's key attributes, each a non-empty, well-formed string within DynamoDB's size
 * limit; `pin` fixes the partition (a cursor cannot jump to another one) and `range`
 * the sort key (a cursor cannot start outside the key condition, which DynamoDB
 * refuses with a ValidationException). Anything else is a 400 `invalid-cursor`.
 */
export function decodeCursor(
  cursor: string | undefined,
  expect: { keys: readonly string[]; pin?: Record<string, string>; range?: { name: string } & SortRange },
): Record<string, AttributeValue> | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let parsed: unknown;
  try {
    if (cursor.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('shape');
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return invalidCursor();
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return invalidCursor();
  const obj = parsed as Record<string, unknown>;
  const ks = Object.keys(obj);
  if (ks.length !== expect.keys.length || !expect.keys.every((k) => isKeyValue(obj[k]))) return invalidCursor();
  for (const [k, v] of Object.entries(expect.pin ?? {})) if (obj[k] !== v) return invalidCursor();
  if (expect.range && !inRange(obj[expect.range.name] as string, expect.range)) return invalidCursor();
  return marshall(obj);
}

function isKeyValue(v: unknown): v is string {
  if (typeof v !== 'string' || v === '') return false;
  const bytes = Buffer.from(v, 'utf8');
  // A lone surrogate has no UTF-8 form (it would not survive the round trip).
  return bytes.length <= MAX_KEY_BYTES && bytes.toString('utf8') === v;
}

/** Whether a sort key value satisfies the range, compared as DynamoDB does: by UTF-8 bytes. */
function inRange(value: string, range: SortRange): boolean {
  const v = Buffer.from(value, 'utf8');
  if ('beginsWith' in range) {
    const prefix = Buffer.from(range.beginsWith, 'utf8');
    return v.length >= prefix.length && v.subarray(0, prefix.length).equals(prefix);
  }
  return Buffer.compare(Buffer.from(range.between[0], 'utf8'), v) <= 0 && Buffer.compare(v, Buffer.from(range.between[1], 'utf8')) <= 0;
}

function invalidCursor(): never {
  throw new InvalidInput('invalid-cursor', 'invalid cursor');
}

/**
 * One page of a Query on a table or index partition: `partition` names the key
 * attribute and value, `range` the sort-key condition if any; the cursor is checked
 * against both, items are mapped (undefined drops one). The shared shape of every
 * paginated listing.
 */
export async function queryPage<T>(
  db: Db,
  what: string,
  q: {
    index?: 'gsi1' | 'gsi2';
    partition: { name: string; value: string };
    range?: SortRange;
    newestFirst?: boolean;
    limit?: number;
    cursor?: string;
  },
  map: (item: Item) => T | undefined,
): Promise<{ items: T[]; nextCursor?: string }> {
  const sortName = q.index ? `${q.index}sk` : 'sk';
  const cursorKeys = q.index ? ['pk', 'sk', q.partition.name, sortName] : ['pk', 'sk'];
  const startKey = decodeCursor(q.cursor, {
    keys: cursorKeys,
    pin: { [q.partition.name]: q.partition.value },
    ...(q.range ? { range: { name: sortName, ...q.range } } : {}),
  });
  const condition = !q.range ? '' : 'beginsWith' in q.range ? ' AND begins_with(#sk, :from)' : ' AND #sk BETWEEN :from AND :to';
  const bounds = !q.range ? {} : 'beginsWith' in q.range ? { ':from': q.range.beginsWith } : { ':from': q.range.between[0], ':to': q.range.between[1] };
  const out = await guard(what, async () => {
    try {
      return await db.client.send(
        new QueryCommand({
          TableName: db.tableName,
          ...(q.index ? { IndexName: q.index } : {}),
          KeyConditionExpression: `#pk = :partition${condition}`,
          ExpressionAttributeNames: { '#pk': q.partition.name, ...(q.range ? { '#sk': sortName } : {}) },
          ExpressionAttributeValues: values({ ':partition': q.partition.value, ...bounds }),
          ScanIndexForward: !q.newestFirst,
          ...(q.limit ? { Limit: q.limit } : {}),
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
    } catch (err) {
      // Backstop: a start key DynamoDB refuses despite the checks above is still the
      // caller's bad input, not an outage.
      if (startKey && (err as { name?: string }).name === 'ValidationException') return invalidCursor();
      throw err;
    }
  });
  const items = (out.Items ?? []).map((raw) => map(fromItem(raw))).filter((x): x is T => x !== undefined);
  const nextCursor = encodeCursor(out.LastEvaluatedKey);
  return nextCursor ? { items, nextCursor } : { items };
}

import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  type AttributeDefinition,
  type GlobalSecondaryIndex,
} from '@aws-sdk/client-dynamodb';
import { TABLE_SCHEMA } from '../schema';

/** The CreateTable input derived from the one schema definition. */
export function createTableInput(tableName: string) {
  const attributeDefinitions: AttributeDefinition[] = Object.entries(TABLE_SCHEMA.attributes).map(
    ([AttributeName, AttributeType]) => ({ AttributeName, AttributeType }),
  );
  const indexes: GlobalSecondaryIndex[] = Object.entries(TABLE_SCHEMA.indexes).map(([IndexName, idx]) => ({
    IndexName,
    KeySchema: [
      { AttributeName: idx.partitionKey, KeyType: 'HASH' },
      { AttributeName: idx.sortKey, KeyType: 'RANGE' },
    ],
    Projection: { ProjectionType: 'ALL' },
  }));
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: attributeDefinitions,
    KeySchema: [
      { AttributeName: TABLE_SCHEMA.partitionKey, KeyType: 'HASH' as const },
      { AttributeName: TABLE_SCHEMA.sortKey, KeyType: 'RANGE' as const },
    ],
    GlobalSecondaryIndexes: indexes,
  };
}

/**
 * Creates the table if it does not exist (idempotent) and turns TTL on `expiresAt`
 * on, unless `ttl: false` (tests of "expired but still in the table").
 */
export async function ensureTable(
  client: DynamoDBClient,
  tableName: string,
  options: { ttl?: boolean } = {},
): Promise<{ created: boolean }> {
  let created = false;
  try {
    await client.send(new CreateTableCommand(createTableInput(tableName)));
    created = true;
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  for (let i = 0; i < 100; i++) {
    const d = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (d.Table?.TableStatus === 'ACTIVE') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (options.ttl !== false && created) {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: TABLE_SCHEMA.ttlAttribute, Enabled: true },
      }),
    );
  }
  return { created };
}

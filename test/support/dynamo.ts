import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { ensureTable } from '../../core/store/dynamo/table';

/** A DynamoDB client pointed at the run's DynamoDB Local. */
export function localClient(): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: inject('dynamoEndpoint'),
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 2,
  });
}

/** Creates a fresh, uniquely named table (TTL on unless `ttl: false`). */
export async function freshTable(options: { ttl?: boolean } = {}): Promise<{ client: DynamoDBClient; tableName: string }> {
  const client = localClient();
  const tableName = `t_${randomBytes(6).toString('hex')}`;
  await ensureTable(client, tableName, options);
  return { client, tableName };
}

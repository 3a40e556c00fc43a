import { DescribeTableCommand, DescribeTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { TABLE_SCHEMA } from '../../core/store/schema';
import { freshTable } from '../support/dynamo';

describe('table from the one schema', () => {
  it('creates keys, both GSIs and TTL on expiresAt', async () => {
    const { client, tableName } = await freshTable();
    const d = await client.send(new DescribeTableCommand({ TableName: tableName }));
    expect(d.Table?.KeySchema?.map((k) => k.AttributeName)).toEqual(['pk', 'sk']);
    expect(d.Table?.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual(Object.keys(TABLE_SCHEMA.indexes).sort());
    const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
    expect(ttl.TimeToLiveDescription?.AttributeName).toBe('expiresAt');
    expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).toMatch(/ENABL/);
  });

  it('can leave TTL off for expired-but-present tests', async () => {
    const { client, tableName } = await freshTable({ ttl: false });
    const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
    expect(ttl.TimeToLiveDescription?.TimeToLiveStatus ?? 'DISABLED').toBe('DISABLED');
  });
});

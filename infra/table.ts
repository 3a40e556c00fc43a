/// <reference path="../.sst/platform/config.d.ts" />
import { TABLE_SCHEMA } from '../core/store/schema';

/** The single table, derived from the one schema: keys, both GSIs, TTL on `expiresAt`, PITR. */
export function table(production: boolean) {
  const fields = Object.fromEntries(Object.keys(TABLE_SCHEMA.attributes).map((name) => [name, 'string' as const]));
  const globalIndexes = Object.fromEntries(
    Object.entries(TABLE_SCHEMA.indexes).map(([name, idx]) => [name, { hashKey: idx.partitionKey, rangeKey: idx.sortKey }]),
  );
  return new sst.aws.Dynamo('Table', {
    fields,
    primaryIndex: { hashKey: TABLE_SCHEMA.partitionKey, rangeKey: TABLE_SCHEMA.sortKey },
    globalIndexes,
    ttl: TABLE_SCHEMA.ttlAttribute,
    transform: {
      table: (args) => {
        args.pointInTimeRecovery = { enabled: true };
        args.deletionProtectionEnabled = production;
      },
    },
  });
}

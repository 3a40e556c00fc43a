import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

const READS = new Set(['GetItemCommand', 'QueryCommand', 'BatchGetItemCommand', 'ScanCommand', 'TransactGetItemsCommand']);

/** Counts DynamoDB requests sent through a client (an SDK middleware; real requests still go out). */
export function countRequests(client: DynamoDBClient) {
  const seen: string[] = [];
  const name = `count-${Math.random().toString(36).slice(2)}`;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      seen.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize', name },
  );
  return {
    total: () => seen.length,
    reads: () => seen.filter((c) => READS.has(c)).length,
    commands: () => [...seen],
    reset: () => {
      seen.length = 0;
    },
    stop: () => {
      client.middlewareStack.remove(name);
    },
  };
}

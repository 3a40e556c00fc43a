import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { withReaders, type AuthorizerDynamoStore } from './authorizer';
import type { Db } from './db';
import { OrgRepo } from './orgs';
import { PolicyRepo } from './policy';
import { TokenRepo } from './tokens';
import { UserRepo } from './users';

export type { Db } from './db';
export { TimeBudgetedClient, type StoreTimeBudget } from './client';

/** All repositories over one table. */
export interface DynamoStore extends AuthorizerDynamoStore {
  users: UserRepo;
  tokens: TokenRepo;
  policy: PolicyRepo;
  orgs: OrgRepo;
}

/** Builds the DynamoDB-backed store. The client is injected (tests point it at DynamoDB Local). */
export function createDynamoStore(options: { client?: DynamoDBClient; tableName: string }): DynamoStore {
  const db: Db = { client: options.client ?? new DynamoDBClient({}), tableName: options.tableName };
  const users = new UserRepo(db);
  const tokens = new TokenRepo(db);
  const policy = new PolicyRepo(db);
  const orgs = new OrgRepo(db);
  return { ...withReaders(db, users, tokens, policy), users, tokens, policy, orgs };
}

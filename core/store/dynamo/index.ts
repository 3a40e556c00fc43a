import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AuthorizerStore } from '../types';
import type { Db } from './db';
import { OrgRepo } from './orgs';
import { PolicyRepo } from './policy';
import { TokenRepo } from './tokens';
import { UserRepo } from './users';

export type { Db } from './db';

/** All repositories over one table. */
export interface DynamoStore extends AuthorizerStore {
  db: Db;
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
  return {
    db,
    users,
    tokens,
    policy,
    orgs,
    loadUser: (id) => users.loadUser(id),
    getToken: (id) => tokens.getToken(id),
    getPolicyVersion: (set) => policy.getPolicyVersion(set),
    loadPolicy: (set) => policy.loadPolicy(set),
    getApiBinding: (apiId) => policy.getApiBinding(apiId),
    recordTokenAccess: (id, entry, dedupe) => tokens.recordTokenAccess(id, entry, dedupe),
    touchTokenLastUsed: (id, at, older) => tokens.touchTokenLastUsed(id, at, older),
  };
}

import type { AuthorizerStore } from '../types';
import type { Db } from './db';
import { PolicyReader } from './policy-read';
import { TokenReader } from './tokens-read';
import { UserReader } from './users-read';

/** The authorizer's store over one table, and the table it works on. */
export interface AuthorizerDynamoStore extends AuthorizerStore {
  db: Db;
}

/**
 * The store the authorizer functions use: reads, plus the telemetry they write (token
 * access log and `lastUsedAt`, shadow reports). Built from the read side of each
 * repository only, so an authorizer's bundle carries none of the admin writes.
 */
export function createAuthorizerStore(db: Db): AuthorizerDynamoStore {
  return withReaders(db, new UserReader(db), new TokenReader(db), new PolicyReader(db));
}

/** The {@link AuthorizerStore} over given repositories (the full store passes its own, which extend the readers). */
export function withReaders(db: Db, users: UserReader, tokens: TokenReader, policy: PolicyReader): AuthorizerDynamoStore {
  return {
    db,
    loadUser: (id) => users.loadUser(id),
    getToken: (id) => tokens.getToken(id),
    getPolicyVersion: (set) => policy.getPolicyVersion(set),
    loadPolicy: (set) => policy.loadPolicy(set),
    getApiBinding: (apiId) => policy.getApiBinding(apiId),
    recordTokenAccess: (id, entry, dedupe) => tokens.recordTokenAccess(id, entry, dedupe),
    recordTokenFailures: (aggregate) => tokens.recordTokenFailures(aggregate),
    touchTokenLastUsed: (id, at, older) => tokens.touchTokenLastUsed(id, at, older),
    recordShadow: (aggregate, now) => policy.recordShadow(aggregate, now),
  };
}

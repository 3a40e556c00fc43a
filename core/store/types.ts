import type { Role, TokenKind } from '../rbac/types';
import type { RouteRule } from '../policy/routes';

/** A user's authorization data: site roles and org memberships (org id -> role names). */
export interface UserRecord {
  userId: string;
  siteRoles: string[];
  orgs: Record<string, string[]>;
}

/** A stored gatehouse token. Only the SHA-256 hash of the secret is kept. */
export interface TokenRecord {
  id: string;
  kind: TokenKind;
  name: string;
  /** Personal tokens: the user it acts for. */
  ownerId?: string;
  /** Org tokens: the org it acts in. */
  orgId?: string;
  /** `resource:action` scopes; absent means all of the holder's rights. */
  scopes?: string[];
  secretHash: string;
  /** After a rotation with grace: the old hash and when it stops working (epoch s). */
  previousSecretHash?: string;
  previousValidUntil?: number;
  createdAt: number;
  /** Epoch seconds; also the DynamoDB TTL attribute. */
  expiresAt: number;
  lastUsedAt?: number;
  revokedAt?: number;
  /** Who created it (user id or `token:<id>`). */
  createdBy?: string;
  /**
   * The user at the root of the `createdBy` chain (the person whose credential, directly or
   * through tokens made by tokens, created it). Recorded since tokens became subject to
   * "nobody widens their own rights"; older tokens follow `createdBy`.
   */
  rootUserId?: string;
}

/** Route policies, the gate and custom roles, as one versioned snapshot. */
export interface PolicySnapshot {
  version: string;
  routes: RouteRule[];
  gate?: string;
  roles: Role[];
}

/** One access-log entry of a token: uses and failed attempts. */
export interface AccessLogEntry {
  at: number;
  route: string;
  sourceIp?: string;
  outcome: 'allow' | 'deny' | 'unauthorized';
  reason: string;
}

/** What the authorizer reads. Adapters (DynamoDB) implement it; tests may wrap it. */
export interface AuthorizerStore {
  /** One request: site roles and memberships of a user. Unknown users have none. */
  loadUser(userId: string): Promise<UserRecord>;
  /** One request: a token by id, or undefined. */
  getToken(tokenId: string): Promise<TokenRecord | undefined>;
  /** The policy version stamp (cheap check before reloading). */
  getPolicyVersion(): Promise<string>;
  /** The whole policy snapshot. */
  loadPolicy(): Promise<PolicySnapshot>;
  /** Records a token use or failed attempt. `dedupeKey` makes the write idempotent per window. */
  recordTokenAccess(tokenId: string, entry: AccessLogEntry, dedupeKey?: string): Promise<void>;
  /** Sets `lastUsedAt` if it is older than `olderThan` (conditional write). */
  touchTokenLastUsed(tokenId: string, at: number, olderThan: number): Promise<void>;
}

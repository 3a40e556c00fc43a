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

/**
 * One policy set (its routes and gate) with the role catalog, as one versioned snapshot.
 * `version` covers both: it changes when the set or any custom role changes, and equals
 * what `getPolicyVersion(set)` answers for the same state.
 */
export interface PolicySnapshot {
  /** The policy set (default: `default`). */
  set?: string;
  version: string;
  routes: RouteRule[];
  gate?: string;
  roles: Role[];
  /** Orgs being deleted: their memberships and org tokens grant nothing (DESIGN §4). */
  deletingOrgIds?: string[];
  /**
   * The set's candidate version while one runs in shadow (DESIGN §9), loaded in the same
   * read as the set's routes and gate. It decides nothing: it is decided beside the set.
   * While it exists, `version` ends in `+<candidate>`, so the cheap version check notices
   * a candidate coming and going.
   */
  candidate?: CandidateSnapshot;
}

/** A candidate version of a policy set, as the authorizer loads it (routes and gate; tests stay in the store). */
export interface CandidateSnapshot {
  /** The candidate's number (never reused within its set). */
  candidate: number;
  /** The set version it is compared against. */
  basedOn: number;
  /** As stored: an item that is not a route table compiles to a broken candidate, which only the shadow path sees. */
  routes: RouteRule[];
  gate?: string;
}

/** One decision of a candidate that differed from the live set's, as the shadow report keeps it (never a credential). */
export interface ShadowExample {
  /** Epoch seconds. */
  at: number;
  principalId: string;
  method: string;
  path: string;
  /** The rule each side matched (null: none). */
  route: string | null;
  candidateRoute: string | null;
  live: { outcome: ShadowOutcome; code: string };
  candidate: { outcome: ShadowOutcome; code: string };
}

/** What a side of a shadow comparison would have answered. */
export type ShadowOutcome = 'allow' | 'deny' | 'unauthorized';

/** Differences of one kind: the rules each side matched and both outcomes. */
export interface ShadowDifference {
  route: string | null;
  candidateRoute: string | null;
  live: ShadowOutcome;
  candidate: ShadowOutcome;
  count: number;
}

/**
 * What one container counted for one candidate since its last flush (DESIGN §9). Writes
 * add up: the stored report holds the sum over containers.
 */
export interface ShadowAggregate {
  set: string;
  candidate: number;
  /** Requests decided by both. */
  compared: number;
  /** Of those, how many the candidate answered otherwise. */
  differing: number;
  /** Shadow decisions that failed (the live answer stood). */
  failed: number;
  /** Differences beyond the container's cap on kinds: counted in `differing`, not broken down. */
  unkeyed: number;
  differences: ShadowDifference[];
  examples: ShadowExample[];
}

/** One access-log entry of a token: uses and failed attempts. */
export interface AccessLogEntry {
  at: number;
  route: string;
  sourceIp?: string;
  outcome: 'allow' | 'deny' | 'unauthorized';
  reason: string;
  /** Aggregated failures only: how many attempts the entry stands for, and when the last one was. */
  count?: number;
  lastAt?: number;
}

/**
 * Failed attempts on one token for one reason from one source IP within one minute
 * (DESIGN §6), as one container counted them since its last write. Writes add up: the
 * stored entry of a (token, reason, source IP, minute) holds the sum over containers.
 */
export interface AccessLogAggregate {
  tokenId: string;
  /** Epoch seconds of the minute's start. */
  minute: number;
  reason: string;
  sourceIp?: string;
  /** A route of the attempts counted (the first one kept): paths are the caller's choice. */
  route: string;
  /** Epoch seconds of the first and last attempt counted. */
  firstAt: number;
  lastAt: number;
  count: number;
}

/** What the authorizer reads. Adapters (DynamoDB) implement it; tests may wrap it. */
export interface AuthorizerStore {
  /** One request: site roles and memberships of a user. Unknown users have none. */
  loadUser(userId: string): Promise<UserRecord>;
  /** One request: a token by id, or undefined. */
  getToken(tokenId: string): Promise<TokenRecord | undefined>;
  /**
   * The version of policy set `set` (default `default`) together with the role catalog:
   * one BatchGetItem of two small stamps, the cheap check before reloading. A set that
   * does not exist has a version too (and loads empty: every request is denied).
   */
  getPolicyVersion(set?: string): Promise<string>;
  /**
   * Policy set `set` (default `default`) with every custom role, and the version they
   * are at: the stamps first, then the set's routes and gate and the roles (three
   * requests, two round trips). `admin` is the built-in admin set (DESIGN §4).
   */
  loadPolicy(set?: string): Promise<PolicySnapshot>;
  /** The policy set bound to an API (by API Gateway API id), or undefined: one GetItem, none for a malformed id. */
  getApiBinding(apiId: string): Promise<string | undefined>;
  /** Records a token use or denial. `dedupeKey` makes the write idempotent per window. */
  recordTokenAccess(tokenId: string, entry: AccessLogEntry, dedupeKey?: string): Promise<void>;
  /** Adds failed attempts to the one entry of their (token, reason, source IP, minute). */
  recordTokenFailures(aggregate: AccessLogAggregate): Promise<void>;
  /** Sets `lastUsedAt` if it is older than `olderThan` (conditional write). */
  touchTokenLastUsed(tokenId: string, at: number, olderThan: number): Promise<void>;
  /** Adds a container's shadow counts to the candidate's stored report; resolves with the number of writes it took. */
  recordShadow(aggregate: ShadowAggregate, now: number): Promise<number>;
}

import { LruCache } from '../cache/lru';
import type { WrittenStatements } from '../gateway/answers';
import type { IamAuthorizerResponse } from '../gateway/iam';
import type { Repeat } from '../gateway/repeats';
import type { TokenRecord, UserRecord } from '../store/types';
import type { Decision } from './decide';
import type { Fresh, ResolvedCredential } from './principals';

/**
 * Every cache on the authorizer's path, in one place: its owner, its bound and how long
 * an entry may live. None serves anything older than `GATEHOUSE_CACHE_TTL_SECONDS`
 * (the TTL below), and none holds a credential: credentials are keyed by their SHA-256.
 * Byte bounds keep a container flat however many distinct callers it sees (a 512 MB
 * Lambda must not grow with its callers); the sizes are estimates declared at `set`.
 *
 * | cache | owner | key | bound | lifetime |
 * |---|---|---|---|---|
 * | `resolved` | PrincipalResolver | SHA-256 of the credential | 20,000 entries, 8 MiB; kept from a credential's second resolution on | TTL from when the user and token records it was built from were read, never past the credential's `exp`/`expiresAt` |
 * | `users` | PrincipalResolver | user id | 20,000 entries, 4 MiB | TTL |
 * | `tokens` | PrincipalResolver | token id (unknown ids too) | 20,000 entries, 2 MiB | TTL |
 * | `decisions` | SharedDecisions (`shared.ts`) | policy set and version, method, path, what a decision reads of the principal (`principalClass`); repeatable policies only | 20,000 entries, 4 MiB; kept from a key's second request on | TTL |
 * | `answers` | IamAnswers (core/gateway) | policy set and version, what a decision reads of the principal, API stage | 8 MiB | TTL |
 * | `shared` | IamAnswers (core/gateway) | the statements' key, method ARN, holder (id, token id, verified email); repeatable policies only | 20,000 entries, 4 MiB; kept from a key's second request on | TTL, never past the decision's `validUntilMs` |
 * | `repeats` | RepeatedAnswers (core/gateway) | flavour, method ARN, SHA-256 of the credential (a TOKEN event's `authorizationToken` as sent) | 20,000 entries, 4 MiB; kept from a key's second request on | until the decision's `validUntilMs`: TTL from when its principal and policy were read, never past the credential's expiry |
 * | policies | PolicySource (`policy.ts`) | policy set | one per set (at most 64) | TTL, then a version check |
 * | API bindings | PolicySource | API id | 1,000 entries | TTL |
 * | token writes | TokenActivity (`activity.ts`) | token and route | 10,000 entries | one minute / one hour windows |
 * | shadow counts | ShadowDecisions (`shadow.ts`) | policy set and candidate | 16 candidates; 50 kinds of difference and 10 examples each | until the next flush (at most once a minute) |
 * | verification keys | IssuerKeys (core/identity/keys.ts) | alg and kid | 64 per issuer | while their key set is current |
 * | key sets | RemoteJwks (core/identity/jwks.ts) | issuer | one per issuer | 10 minutes; unknown kid refetch at most every 30 s |
 * | compiled expressions | core/policy/expression.ts | expression text | 1,000 entries | 24 hours (compilation is deterministic) |
 */
export interface AuthorizerCaches {
  resolved: LruCache<string, ResolvedCredential>;
  users: LruCache<string, Fresh<UserRecord>>;
  tokens: LruCache<string, Fresh<TokenRecord | null>>;
  decisions: LruCache<string, Decision>;
  answers: LruCache<string, WrittenStatements | 'cut'>;
  shared: LruCache<string, IamAuthorizerResponse>;
  repeats: LruCache<string, Repeat>;
}

const MiB = 1024 * 1024;

/** The production caches (bounds above), on an injected clock. `scale` shrinks or grows every bound (tests). */
export function createCaches(now: () => number, scale = 1): AuthorizerCaches {
  const bound = (n: number) => Math.max(1, Math.round(n * scale));
  return {
    resolved: new LruCache({ maxEntries: bound(20_000), maxBytes: bound(8 * MiB), now, admitFromSecondSet: true }),
    users: new LruCache({ maxEntries: bound(20_000), maxBytes: bound(4 * MiB), now }),
    tokens: new LruCache({ maxEntries: bound(20_000), maxBytes: bound(2 * MiB), now }),
    decisions: new LruCache({ maxEntries: bound(20_000), maxBytes: bound(4 * MiB), now, admitFromSecondSet: true }),
    answers: new LruCache({ maxEntries: bound(50_000), maxBytes: bound(8 * MiB), now }),
    shared: new LruCache({ maxEntries: bound(20_000), maxBytes: bound(4 * MiB), now, admitFromSecondSet: true }),
    repeats: new LruCache({ maxEntries: bound(20_000), maxBytes: bound(4 * MiB), now, admitFromSecondSet: true }),
  };
}

import type { Decided } from '../authorizer/authorize';
import type { LruCache } from '../cache/lru';
import type { MethodArn } from './arn';
import { answerChars, freezeAnswer, type IamAuthorizerResponse } from './iam';

/** An answer already given, the decision it was built from and the ARN it was for (never the request: it holds the credential). */
export interface Repeat {
  result: Decided;
  arn: MethodArn;
  answer: IamAuthorizerResponse;
}

/**
 * Answers to repeated requests: the same credential asking about the same method ARN
 * gets the IAM answer it got before, while that answer still holds. The credential is
 * taken as the event carries it: a TOKEN event's `authorizationToken` as sent
 * (`tokenDigest`: with the ARN, the whole event, known before either is parsed), otherwise
 * the credential parsed from the request (`AuthzRequest.credentialDigest`). It holds when
 * everything the decision and the answer were built from is fixed by the two: the
 * principal comes from the credential, the policy from the ARN's API, and the policy
 * reads nothing else of the request nor the time (`CompiledPolicy.repeatable`); and
 * only until `Decided.validUntilMs`, the earliest of the credential's expiry and the
 * TTL from when the principal and the policy were read. A wrapper around the decision,
 * like the caches it draws on: the decision itself knows nothing of it. Keys hold the
 * credential's SHA-256, never the credential.
 *
 * An answer is kept from a key's second request on (the cache admits a key from its
 * second `set`, `caches.ts`): most credentials are seen once (a client with a new token,
 * a new path), and keeping their answers for a while only makes work for the garbage
 * collector.
 */
export class RepeatedAnswers {
  constructor(private readonly deps: { cache: LruCache<string, Repeat>; now: () => number }) {}

  /** The key of a request that may have been answered before, from its credential's digest (see above); undefined without both. */
  key(flavour: string, digest: string | undefined, currentArn: unknown): string | undefined {
    if (digest === undefined || typeof currentArn !== 'string') return undefined;
    return `${flavour}\u0000${currentArn}\u0000${digest}`;
  }

  get(key: string | undefined): Repeat | undefined {
    return key === undefined ? undefined : this.deps.cache.get(key);
  }

  /** Keeps an answer under `key` when it may be given again; returns the answer. */
  remember(key: string | undefined, repeat: Repeat): IamAuthorizerResponse {
    const { result, answer } = repeat;
    if (key === undefined || !result.policy.repeatable || !result.principal) return answer;
    // Once kept, shared by every repeat: nothing downstream may change it.
    if (this.deps.cache.set(key, repeat, result.validUntilMs - this.deps.now(), () => 1024 + 2 * (key.length + answerChars(answer)))) freezeAnswer(answer);
    return answer;
  }
}

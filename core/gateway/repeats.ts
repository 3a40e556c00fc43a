import type { Decided } from '../authorizer/authorize';
import type { AuthzRequest } from '../authorizer/context';
import type { LruCache } from '../cache/lru';
import { sha256Base64url } from '../identity/digest';
import type { IamAuthorizerResponse } from './iam';

/** An answer already given, and the decision it was built from. */
export interface Repeat {
  result: Decided;
  answer: IamAuthorizerResponse;
}

/**
 * Answers to repeated requests: the same credential asking about the same method ARN
 * gets the IAM answer it got before, while that answer still holds. It holds when
 * everything the decision and the answer were built from is fixed by the two: the
 * principal comes from the credential, the policy from the ARN's API, and the policy
 * reads nothing else of the request nor the time (`CompiledPolicy.repeatable`); and
 * only until `Decided.validUntilMs`, the earliest of the credential's expiry and the
 * TTL from when the principal and the policy were read. A wrapper around the decision,
 * like the caches it draws on: the decision itself knows nothing of it. Keys hold the
 * credential's SHA-256, never the credential.
 */
export class RepeatedAnswers {
  constructor(private readonly deps: { cache: LruCache<string, Repeat>; now: () => number }) {}

  /** The key of a request that may have been answered before; undefined without a credential. */
  key(flavour: string, request: AuthzRequest, currentArn: string): string | undefined {
    if (request.credential === undefined) return undefined;
    return `${flavour}\u0000${currentArn}\u0000${sha256Base64url(request.credential)}`;
  }

  get(key: string | undefined): Repeat | undefined {
    return key === undefined ? undefined : this.deps.cache.get(key);
  }

  /** Keeps `answer` for the request under `key` when it may be given again; returns it. */
  remember(key: string | undefined, result: Decided, answer: IamAuthorizerResponse): IamAuthorizerResponse {
    if (key === undefined || !result.policy.repeatable || !result.principal) return answer;
    // Shared by every repeat: nothing downstream may change it.
    deepFreeze(answer);
    this.deps.cache.set(key, { result, answer }, result.validUntilMs - this.deps.now(), 1024 + 2 * (key.length + answerChars(answer)));
    return answer;
  }
}

/** Characters of an answer's strings (its size in memory, roughly halved; 1 KiB above is for the decision). */
function answerChars(answer: IamAuthorizerResponse): number {
  let n = answer.principalId.length;
  for (const s of answer.policyDocument.Statement) for (const r of s.Resource) n += r.length + 16;
  for (const [k, v] of Object.entries(answer.context ?? {})) n += k.length + String(v).length + 16;
  return n;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

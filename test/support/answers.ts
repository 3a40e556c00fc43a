import type { Decided } from '../../core/authorizer/authorize';
import type { AuthzRequest } from '../../core/authorizer/context';
import { decide } from '../../core/authorizer/decide';
import { principalClass, type CompiledPolicy } from '../../core/authorizer/policy';
import { LruCache } from '../../core/cache/lru';
import { IamAnswers, type WrittenStatements } from '../../core/gateway/answers';
import { parseMethodArn } from '../../core/gateway/arn';
import type { IamAuthorizerResponse } from '../../core/gateway/iam';
import { createLogger } from '../../core/log';
import type { Principal } from '../../core/rbac/types';

/** What a method ARN asks, as the REST TOKEN flavour reads it (no headers, no query). */
export function requestOf(arn: string): AuthzRequest {
  const parsed = parseMethodArn(arn)!;
  return { method: parsed.method, path: parsed.path, headers: {}, query: {}, apiId: parsed.apiId };
}

/**
 * The IAM answer to `current` for a fresh decision of `principal` under `policy` at
 * `nowMs`, with the log lines IamAnswers wrote. `cache` is its statements cache (a new one
 * by default).
 */
export function answerFor(
  policy: CompiledPolicy,
  principal: Principal,
  current: string,
  nowMs: number,
  cache: LruCache<string, WrittenStatements | 'cut'> = new LruCache({ maxEntries: 10 }),
): { answer: IamAuthorizerResponse; allowed: boolean; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l)) });
  const answers = new IamAnswers({ cache, shared: new LruCache({ maxEntries: 10 }), logger, now: () => nowMs, ttlMs: 30_000 });
  const request = requestOf(current);
  const decision = decide(policy, principal, request, nowMs);
  const result: Decided = { effect: decision.allowed ? 'allow' : 'deny', code: decision.code, decision, principal, principalClass: principalClass(policy, principal), policy, validUntilMs: nowMs + 30_000 };
  // A token principal's answer names its token (the context's tokenId), as the authorizer's does.
  if (principal.token) result.token = { id: principal.token.id } as Decided['token'] & object;
  return { answer: answers.answer(result, request, parseMethodArn(current)!, current), allowed: decision.allowed, lines };
}

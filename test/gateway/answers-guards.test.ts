import { describe, expect, it } from 'vitest';
import type { Decided } from '../../core/authorizer/authorize';
import { gatewayContext } from '../../core/authorizer/context';
import { decide } from '../../core/authorizer/decide';
import { compilePolicy } from '../../core/authorizer/policy';
import { LruCache } from '../../core/cache/lru';
import { IamAnswers, type WrittenStatements } from '../../core/gateway/answers';
import { parseMethodArn } from '../../core/gateway/arn';
import { iamPatternsRegExp } from '../../core/gateway/compile';
import { statement } from '../../core/gateway/iam';
import { createLogger } from '../../core/log';
import type { Principal } from '../../core/rbac/types';
import { iamAllows } from '../support/iam';

const PREFIX = 'arn:aws:execute-api:us-east-1:123456789012:api1/prod';
const NOW = Date.UTC(2026, 11, 3, 12, 0, 0);

/**
 * Statements that wrongly allow every project of acme: compile.ts proves its Allows never
 * cover a path a fresh decision refuses, so these can only be written by hand. The answer
 * must still never allow the request it was asked about.
 */
function wrongStatements(): WrittenStatements {
  const allow = ['GET/orgs/acme/projects/*'];
  return {
    compiled: { allow, deny: [], bytes: allow[0]!.length + 3, covered: new Map(), omitted: [], perRequest: false },
    allow: statement('Allow', allow.map((p) => `${PREFIX}/${p}`)),
    bytes: allow[0]!.length + 3 + PREFIX.length + 4,
    allowMatch: iamPatternsRegExp(allow)!,
  };
}

/** A cache that holds the wrong statements under every key. */
class Holding extends LruCache<string, WrittenStatements | 'cut'> {
  override get(): WrittenStatements {
    return wrongStatements();
  }
}

function answerFor(principal: Principal, current: string) {
  const lines: { message: string; reason?: string }[] = [];
  const logger = createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l)) });
  const answers = new IamAnswers({ cache: new Holding({ maxEntries: 10 }), logger, now: () => NOW, ttlMs: 30_000 });
  // Reading a project needs project:delete here: an org viewer is refused every one.
  const policy = compilePolicy({ version: '1', routes: [{ route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'delete', org: '{orgId}' }], roles: [] });
  const arn = parseMethodArn(current)!;
  const request = { method: arn.method, path: arn.path, headers: {}, query: {}, apiId: arn.apiId };
  const decision = decide(policy, principal, request, NOW);
  const result: Decided = { effect: decision.allowed ? 'allow' : 'deny', code: decision.code, decision, principal, policy, context: gatewayContext(principal), validUntilMs: NOW + 30_000 };
  return { answer: answers.answer(result, request, arn, current), allowed: decision.allowed, lines };
}

describe('IAM answers: the live request is never allowed by an answer to a refusal', () => {
  const alice: Principal = { id: 'alice', kind: 'user', siteRoles: [], orgs: { acme: ['org-viewer'] }, emailVerified: false };

  it('a refused ARN holding `*` (it cannot be named in a Deny) that an Allow pattern covers gets an answer cut to nothing', () => {
    const current = `${PREFIX}/GET/orgs/acme/projects/x*`;
    const { answer, allowed, lines } = answerFor(alice, current);
    expect(allowed).toBe(false);
    // IAM reads the answer's `*` as a wildcard: nothing in the answer may cover this ARN.
    expect(iamAllows(answer, current)).toBe(false);
    expect(lines.filter((l) => l.message === 'authorizer.answer-cut').map((l) => l.reason)).toEqual(['not-listable']);
  });

  it('a refused ARN that can be named is denied by name, which wins over the Allow', () => {
    const current = `${PREFIX}/GET/orgs/acme/projects/p1`;
    const { answer, allowed } = answerFor(alice, current);
    expect(allowed).toBe(false);
    expect(answer.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny', Resource: [current] });
    expect(iamAllows(answer, current)).toBe(false);
  });
});

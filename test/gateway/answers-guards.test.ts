import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../core/authorizer/policy';
import { LruCache } from '../../core/cache/lru';
import type { WrittenStatements } from '../../core/gateway/answers';
import { iamPatternsRegExp } from '../../core/gateway/compile';
import { statement } from '../../core/gateway/iam';
import type { Principal } from '../../core/rbac/types';
import { answerFor } from '../support/answers';
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

/** The answer to `current` for an org viewer under a policy where reading a project needs project:delete (every one refused), from the wrong statements. */
function refusedAnswer(principal: Principal, current: string) {
  const policy = compilePolicy({ version: '1', routes: [{ route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'delete', org: '{orgId}' }], roles: [] });
  return answerFor(policy, principal, current, NOW, new Holding({ maxEntries: 10 }));
}

describe('IAM answers: the live request is never allowed by an answer to a refusal', () => {
  const alice: Principal = { id: 'alice', kind: 'user', siteRoles: [], orgs: { acme: ['org-viewer'] }, emailVerified: false };

  it('a refused ARN holding `*` (it cannot be named in a Deny) that an Allow pattern covers gets an answer cut to nothing', () => {
    const current = `${PREFIX}/GET/orgs/acme/projects/x*`;
    const { answer, allowed, lines } = refusedAnswer(alice, current);
    expect(allowed).toBe(false);
    // IAM reads the answer's `*` as a wildcard: nothing in the answer may cover this ARN.
    expect(iamAllows(answer, current)).toBe(false);
    expect(lines.filter((l) => l.message === 'authorizer.answer-cut').map((l) => l.reason)).toEqual(['not-listable']);
  });

  it('a refused ARN that can be named is denied by name, which wins over the Allow', () => {
    const current = `${PREFIX}/GET/orgs/acme/projects/p1`;
    const { answer, allowed } = refusedAnswer(alice, current);
    expect(allowed).toBe(false);
    expect(answer.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny', Resource: [current] });
    expect(iamAllows(answer, current)).toBe(false);
  });
});

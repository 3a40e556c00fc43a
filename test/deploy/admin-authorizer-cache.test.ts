import { describe, expect, it } from 'vitest';
import { validateExpression } from '../../core/policy/expression';
import { buildHandlers } from '../../functions/apps';
import { createRuntime } from '../../functions/runtime';
import { ADMIN_ROUTES, adminRoutePolicies } from '../../functions/routes';
import { ADMIN_AUTHORIZER } from '../../infra/handlers';
import { freshTable } from '../support/dynamo';
import { makeIssuer } from '../support/jwt';

const API = 'arn:aws:execute-api:us-east-1:123456789012:abc123/$default';
const NOW = Date.UTC(2026, 10, 22, 12) / 1000;

/**
 * The admin API's authorizer caches a simple (yes/no) answer per (Authorization header,
 * HTTP method, concrete path) for ADMIN_AUTHORIZER.ttl. That is only correct if the
 * answer cannot differ between two requests with the same key: different query, source
 * IP or time. These tests pin that down for the admin route policies (which are stricter
 * still: one answer per route, whatever the path values).
 */
describe('admin API authorizer cache key', () => {
  it('is the credential, the method and the concrete path, with a short TTL', () => {
    expect(ADMIN_AUTHORIZER.identitySources).toEqual(['$request.header.Authorization', '$context.httpMethod', '$context.path']);
    expect(parseInt(ADMIN_AUTHORIZER.ttl, 10)).toBeLessThanOrEqual(60);
  });

  it('admin route policies bind no path parameter and read nothing outside that key', () => {
    const rules = adminRoutePolicies();
    expect(rules.map((r) => r.route).sort()).toEqual(Object.keys(ADMIN_ROUTES).sort());
    for (const rule of rules) {
      expect(rule, rule.route).not.toHaveProperty('org');
      expect(rule, rule.route).not.toHaveProperty('owner');
      if (rule.condition === undefined) continue;
      const v = validateExpression(rule.condition);
      expect(v.readsUncachedRequestData, rule.route).toBe(false);
      expect(v.timeDependent, rule.route).toBe(false);
      expect(v.reads.every((r) => r.startsWith('principal')), `${rule.route} reads ${v.reads.join(', ')}`).toBe(true);
    }
  });

  it('the real HTTP authorizer gives one answer per (credential, route) whatever the path values', async () => {
    const { client, tableName } = await freshTable();
    const idp = await makeIssuer();
    const rt = createRuntime(
      { GATEHOUSE_TABLE: tableName, GATEHOUSE_LOG_LEVEL: 'error', GATEHOUSE_CACHE_TTL_SECONDS: '0', GATEHOUSE_ISSUERS: JSON.stringify([idp.config]) },
      { client, now: () => NOW * 1000, logSink: () => {} },
    );
    await rt.store.policy.putRoutes(adminRoutePolicies(), NOW);
    const h = buildHandlers(rt);
    const jwt = await idp.sign('alice', NOW); // a member of no org, no site role
    const ask = async (method: string, path: string, routeKey: string, credential?: string) => {
      const headers: Record<string, string> = credential ? { authorization: `Bearer ${credential}` } : {};
      const res = (await h.http({
        version: '2.0', type: 'REQUEST', routeArn: `${API}/${method}${path}`, routeKey, rawPath: path, headers,
        requestContext: { http: { method, path, sourceIp: '198.51.100.7' }, stage: '$default' },
      } as never)) as { isAuthorized: boolean };
      return res.isAuthorized;
    };
    // Same route key, different orgs: the same answer (the function decides membership itself).
    for (const org of ['acme', 'globex', 'a-b-c']) {
      expect(await ask('GET', `/orgs/${org}/members`, 'GET /orgs/{orgId}/members', jwt)).toBe(true);
      expect(await ask('DELETE', `/orgs/${org}`, 'DELETE /orgs/{orgId}', jwt)).toBe(true);
    }
    // No credential or a bad one: never authorized, on any route.
    expect(await ask('GET', '/orgs/acme/members', 'GET /orgs/{orgId}/members')).toBe(false);
    expect(await ask('GET', '/me', 'GET /me', 'not-a-jwt')).toBe(false);
  });
});

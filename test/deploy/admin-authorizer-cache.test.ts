import { describe, expect, it } from 'vitest';
import { ADMIN_SET_ROUTES } from '../../core/policy/admin-set';
import { loadExpressionEngine, validateExpression } from '../../core/policy/expression';
import { buildHandlers } from '../../functions/apps';
import { ADMIN_ROUTES } from '../../functions/routes';
import { createRuntime } from '../../functions/runtime';
import { ADMIN_AUTHORIZER, FUNCTIONS } from '../../infra/handlers';
import { freshTable } from '../support/dynamo';
import { makeIssuer } from '../support/jwt';

// These tests validate and compile expressions directly: jexl is loaded on first need (core/policy/expression.ts).
await loadExpressionEngine();

const API = 'arn:aws:execute-api:us-east-1:123456789012:abcdefghij/$default';
const NOW = Date.UTC(2026, 10, 22, 12) / 1000;

/**
 * The admin API's authorizer runs pinned to the built-in `admin` policy set and caches a
 * simple (yes/no) answer per (Authorization header, HTTP method, concrete path) for
 * ADMIN_AUTHORIZER.ttl. That is only correct if the answer cannot differ between two
 * requests with the same key: a different query, source IP or time. The admin set binds
 * `{orgId}` from the path, which the key holds.
 */
describe('admin API authorizer cache key', () => {
  it('is the credential, the method and the concrete path, with a short TTL, on a function pinned to the admin set', () => {
    expect(ADMIN_AUTHORIZER.identitySources).toEqual(['$request.header.Authorization', '$context.httpMethod', '$context.path']);
    expect(parseInt(ADMIN_AUTHORIZER.ttl, 10)).toBeLessThanOrEqual(60);
    expect(FUNCTIONS.adminAuthorizer.environment).toMatchObject({ GATEHOUSE_POLICY_SET: 'admin' });
  });

  it('the admin set covers every admin route and reads nothing outside that key', () => {
    expect(ADMIN_SET_ROUTES.map((r) => r.route).sort()).toEqual(Object.keys(ADMIN_ROUTES).sort());
    for (const rule of ADMIN_SET_ROUTES) {
      if (rule.org !== undefined) expect(rule.org, rule.route).toMatch(/^\{[A-Za-z]+\}$/);
      if (rule.condition === undefined) continue;
      const v = validateExpression(rule.condition);
      expect(v.readsUncachedRequestData, rule.route).toBe(false);
      expect(v.timeDependent, rule.route).toBe(false);
      expect(v.reads.every((r) => r.startsWith('principal')), `${rule.route} reads ${v.reads.join(', ')}`).toBe(true);
    }
  });

  it('the real HTTP authorizer pinned to the admin set: answers differ by path, and nothing needs storing', async () => {
    const { client, tableName } = await freshTable();
    const idp = await makeIssuer();
    const rt = createRuntime(
      { GATEHOUSE_TABLE: tableName, GATEHOUSE_LOG_LEVEL: 'error', GATEHOUSE_CACHE_TTL_SECONDS: '0', GATEHOUSE_ISSUERS: JSON.stringify([idp.config]), GATEHOUSE_POLICY_SET: 'admin' },
      { client, now: () => NOW * 1000, logSink: () => {} },
    );
    await rt.store.orgs.createOrg({ id: 'acme', name: 'Acme', createdAt: NOW });
    await rt.store.users.putMembership('acme', 'alice', ['org-admin'], NOW);
    const h = buildHandlers(rt);
    const ask = async (method: string, path: string, routeKey: string, credential?: string) => {
      const headers: Record<string, string> = credential ? { authorization: `Bearer ${credential}` } : {};
      const res = (await h.http({
        version: '2.0', type: 'REQUEST', routeArn: `${API}/${method}${path}`, routeKey, rawPath: path, headers,
        requestContext: { http: { method, path, sourceIp: '198.51.100.7' }, stage: '$default' },
      } as never)) as { isAuthorized: boolean };
      return res.isAuthorized;
    };
    const alice = await idp.sign('alice', NOW);
    const nobody = await idp.sign('nobody', NOW); // a member of no org, no site role
    // The same route key, another org: another answer (the concrete path is in the key).
    expect(await ask('GET', '/orgs/acme/members', 'GET /orgs/{orgId}/members', alice)).toBe(true);
    expect(await ask('GET', '/orgs/globex/members', 'GET /orgs/{orgId}/members', alice)).toBe(false);
    expect(await ask('GET', '/orgs/acme/members', 'GET /orgs/{orgId}/members', nobody)).toBe(false);
    // Signed-in routes: anyone with a valid credential; the function decides the rest.
    expect(await ask('GET', '/me', 'GET /me', nobody)).toBe(true);
    // No credential or a bad one: never authorized, on any route.
    expect(await ask('GET', '/orgs/acme/members', 'GET /orgs/{orgId}/members')).toBe(false);
    expect(await ask('GET', '/me', 'GET /me', 'not-a-jwt')).toBe(false);
  });
});

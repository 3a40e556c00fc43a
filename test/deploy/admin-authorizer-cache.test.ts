import { describe, expect, it } from 'vitest';
import { validateExpression } from '../../core/policy/expression';
import { buildHandlers } from '../../functions/apps';
import { createRuntime } from '../../functions/runtime';
import { singleSetView } from '../../core/policy/admin-set';
import { createDynamoStore } from '../../core/store/dynamo/index';
import { ADMIN_ROUTES } from '../../functions/routes';
import { ADMIN_AUTHORIZER } from '../../infra/handlers';
import { freshTable } from '../support/dynamo';
import { makeIssuer } from '../support/jwt';

const API = 'arn:aws:execute-api:us-east-1:123456789012:abc123/$default';
const NOW = Date.UTC(2026, 10, 22, 12) / 1000;

/**
 * The admin API's authorizer caches a simple (yes/no) answer per (Authorization header,
 * route key) for ADMIN_AUTHORIZER.ttl. That is only correct if the answer cannot differ
 * between two requests with the same key: different path parameter values, query,
 * source IP or time. These tests pin that down for the rules the deployed authorizer
 * decides admin routes with today: the signed-in rules its single-set view lays over the
 * default set (nothing is stored for them). The built-in `admin` set binds `{orgId}`:
 * the authorizer that decides the admin API with it needs the path in that key.
 */
describe('admin API authorizer cache key', () => {
  it('is the credential plus the route key, with a short TTL', () => {
    expect(ADMIN_AUTHORIZER.identitySources).toEqual(['$request.header.Authorization', '$context.routeKey']);
    expect(parseInt(ADMIN_AUTHORIZER.ttl, 10)).toBeLessThanOrEqual(60);
  });

  it('admin route policies bind no path parameter and read nothing outside that key', async () => {
    const { client, tableName } = await freshTable();
    const view = await singleSetView(createDynamoStore({ client, tableName })).loadPolicy();
    const rules = view.routes.filter((r) => Object.prototype.hasOwnProperty.call(ADMIN_ROUTES, r.route));
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
    // Nothing stored: a fresh deployment's admin API works as it is.
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

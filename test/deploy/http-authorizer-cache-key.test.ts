import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import type { RouteRule } from '../../core/policy/routes';
import { buildHandlers } from '../../functions/apps';
import { ADMIN_AUTHORIZER } from '../../infra/handlers';
import { testRuntime } from '../support/runtime';

/**
 * DESIGN §5: an HTTP API simple answer is a bare yes/no that API Gateway reuses for every
 * request with the same identity-source values, on every route of the API. So the
 * identity sources gatehouse deploys and documents must separate every two requests
 * whose answers can differ: the concrete method and path, not only `$context.routeKey`
 * (the route template, the same for /orgs/acme/… and /orgs/globex/…).
 *
 * The model below is API Gateway's cache as its documentation describes it: keyed by the
 * values of the authorizer's identity sources; a missing source is a 401 without calling
 * the authorizer. Misses go to the real HTTP authorizer handler over DynamoDB Local.
 */

const OLD_SOURCES = ['$request.header.Authorization', '$context.routeKey'] as const;

interface GatewayRequest {
  method: string;
  path: string;
  /** The API Gateway route the request matched (a template). */
  routeKey: string;
  headers: Record<string, string>;
}

/** The value API Gateway takes for one identity source, or undefined when the request has none. */
function sourceValue(source: string, req: GatewayRequest): string | undefined {
  const header = /^\$request\.header\.(.+)$/.exec(source);
  if (header) return Object.entries(req.headers).find(([k]) => k.toLowerCase() === header[1]!.toLowerCase())?.[1];
  switch (source) {
    case '$context.httpMethod':
      return req.method;
    case '$context.path':
      return req.path;
    case '$context.routeKey':
      return req.routeKey;
    default:
      // A source this model does not know would make the test meaningless: fail loudly.
      throw new Error(`identity source not modelled: ${source}`);
  }
}

const API = 'arn:aws:execute-api:us-east-1:123456789012:demo123/$default';
const DEMO_ROUTE_KEY = 'ANY /demo/orgs/{orgId}/{proxy+}';

/** An operator's route table behind one API Gateway `ANY /demo/orgs/{orgId}/{proxy+}` route. */
const ROUTES: RouteRule[] = [
  { route: 'GET /demo/orgs/{orgId}/{proxy+}', resource: 'project', action: 'read', org: '{orgId}' },
  { route: 'DELETE /demo/orgs/{orgId}/{proxy+}', resource: 'project', action: 'delete', org: '{orgId}' },
];

async function demo() {
  const rt = await testRuntime({ env: { GATEHOUSE_LOG_LEVEL: 'error' } });
  await rt.store.policy.putRoutes(ROUTES, rt.clock.seconds);
  // Org tokens are created only in an org that exists.
  await rt.store.orgs.createOrg({ id: 'acme', name: 'Acme', createdAt: rt.clock.seconds });
  const t = generateToken();
  // An org token of acme that may read projects there, and nothing else.
  await rt.store.tokens.createToken({ id: t.id, kind: 'org', orgId: 'acme', scopes: ['project:read'], name: 'ci', secretHash: hashSecret(t.secret), createdAt: rt.clock.seconds, expiresAt: rt.clock.seconds + 86400 });
  const h = buildHandlers(rt);
  const fresh = async (req: GatewayRequest) => {
    const res = (await h.http({
      version: '2.0', type: 'REQUEST', routeArn: `${API}/${req.method}${req.path}`, routeKey: req.routeKey, rawPath: req.path, headers: req.headers,
      requestContext: { http: { method: req.method, path: req.path, sourceIp: '198.51.100.7' }, stage: '$default' },
    })) as { isAuthorized: boolean };
    return res.isAuthorized;
  };
  /** API Gateway in front of the authorizer: answers cached by identity-source values (TTL longer than the test). */
  const gateway = (sources: readonly string[]) => {
    const cache = new Map<string, boolean>();
    return async (req: GatewayRequest): Promise<boolean | 401> => {
      const values = sources.map((s) => sourceValue(s, req));
      if (values.some((v) => v === undefined || v === '')) return 401;
      const key = JSON.stringify(values);
      if (!cache.has(key)) cache.set(key, await fresh(req));
      return cache.get(key)!;
    };
  };
  const req = (method: string, path: string): GatewayRequest => ({ method, path, routeKey: DEMO_ROUTE_KEY, headers: { authorization: `Bearer ${t.token}` } });
  return { gateway, fresh, req };
}

describe('HTTP API simple answers under API Gateway caching', () => {
  it('with the old key (credential + route key) an org token\'s yes for acme is served for globex, and a GET\'s for a DELETE', async () => {
    const { gateway, fresh, req } = await demo();
    const gw = gateway(OLD_SOURCES);
    expect(await gw(req('GET', '/demo/orgs/acme/x'))).toBe(true);
    // The fresh decisions say no ...
    expect(await fresh(req('GET', '/demo/orgs/globex/x'))).toBe(false);
    expect(await fresh(req('DELETE', '/demo/orgs/acme/x'))).toBe(false);
    // ... but the cached yes is applied: the route key is the same template.
    expect(await gw(req('GET', '/demo/orgs/globex/x'))).toBe(true);
    expect(await gw(req('DELETE', '/demo/orgs/acme/x'))).toBe(true);
  });

  it('with the deployed key every cached answer equals the fresh decision for its concrete request', async () => {
    const { gateway, fresh, req } = await demo();
    const gw = gateway(ADMIN_AUTHORIZER.identitySources);
    const sequence = [
      req('GET', '/demo/orgs/acme/x'),
      req('GET', '/demo/orgs/globex/x'),
      req('DELETE', '/demo/orgs/acme/x'),
      req('GET', '/demo/orgs/acme/y/z'),
      req('GET', '/demo/orgs/acme/x'),
      req('DELETE', '/demo/orgs/globex/x'),
      req('GET', '/demo/orgs/globex/x'),
    ];
    const answers: boolean[] = [];
    for (const r of sequence) {
      const cached = await gw(r);
      expect(cached, `${r.method} ${r.path}`).toBe(await fresh(r));
      answers.push(cached as boolean);
    }
    expect(answers).toEqual([true, false, false, true, true, false, false]);
  });

  it('the deployed identity sources are the credential, the HTTP method and the concrete path', () => {
    expect(ADMIN_AUTHORIZER.identitySources).toEqual(['$request.header.Authorization', '$context.httpMethod', '$context.path']);
    // Every source is one API Gateway accepts for HTTP API Lambda authorizers: a header or a context variable.
    for (const s of ADMIN_AUTHORIZER.identitySources) expect(s).toMatch(/^\$(request\.header\.[A-Za-z0-9-]+|context\.[A-Za-z]+)$/);
  });

  it('the README recommends exactly the deployed identity sources for HTTP APIs', () => {
    const readme = readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('### Attaching the authorizers to your own APIs'));
    const recommended = [...section.matchAll(/identitySources: \[([^\]]*)\]/g)].map((m) => [...m[1]!.matchAll(/'([^']+)'/g)].map((q) => q[1]));
    expect(recommended.length).toBeGreaterThan(0);
    for (const r of recommended) expect(r).toEqual([...ADMIN_AUTHORIZER.identitySources]);
    expect(section).not.toMatch(/identitySources: \['\$request\.header\.Authorization', '\$context\.routeKey'\]/);
  });
});

import type { RouteRule } from '../core/policy/routes';

/**
 * The route policies `npm start` seeds into the `default` set of an empty table: the demo
 * upstream, where a newcomer sees both an Allow and a Deny. Nothing is seeded for the
 * admin API: the built-in, read-only `admin` set decides it (core/policy/admin-set.ts).
 *
 * The demo routes must not overlap. API Gateway applies a cached authorizer answer to
 * every route of the same caller, so the authorizer lists each route the caller may
 * use as an IAM resource; a wider route whose glob also covers a narrower route the
 * caller may NOT use (say `GET /demo/{proxy+}` over `/demo/orgs/<other org>/…`) cannot
 * be listed without opening the narrower one, so it is left out and answers 403 from
 * the cache although a fresh decision allows it. Disjoint prefixes keep every cached
 * answer equal to a fresh one (test/e2e/gateway-cache.test.ts checks this).
 */
export const DEMO_SEED_ROUTES: RouteRule[] = [
  // Any signed-in caller.
  { route: 'GET /demo/public/{proxy+}', resource: 'demo', action: 'read', public: true, condition: 'principal.kind != "anonymous"' },
  // Callers with demo:write in that org (org admins; site admins everywhere).
  { route: 'ANY /demo/orgs/{orgId}/{proxy+}', resource: 'demo', action: 'write', org: '{orgId}' },
];

/** Everything seeded into the default set on first start (only when it holds no routes yet). */
export function seedRoutes(): RouteRule[] {
  return DEMO_SEED_ROUTES.map((r) => ({ ...r }));
}

import { createRestAuthorizer, createHttpAuthorizer, createWebSocketAuthorizer } from '../../core/gateway/handlers';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import type { RouteRule } from '../../core/policy/routes';
import type { TokenRecord } from '../../core/store/types';
import { makeIssuer } from '../support/jwt';
import { testRuntime, type TestClock } from '../support/runtime';

export const API = 'arn:aws:execute-api:us-east-1:123456789012:api123/prod';
export const arn = (method: string, path: string) => `${API}/${method}${path}`;

/** A route table like an operator's: org-bound, owner-bound, public, proxy, conditional. */
export const ROUTES: RouteRule[] = [
  { route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}' },
  { route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'read', org: '{orgId}' },
  { route: 'DELETE /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'delete', org: '{orgId}' },
  { route: 'GET /orgs/{orgId}/projects/{projectId}/secrets', resource: 'secret', action: 'read', org: '{orgId}' },
  { route: 'GET /orgs/{orgId}/billing', resource: 'billing', action: 'read', org: '{orgId}', condition: 'principal.emailVerified == true' },
  { route: 'POST /orgs/{orgId}/deploy', resource: 'deployment', action: 'create', org: '{orgId}', condition: 'request.headers["x-approved"] == "yes"' },
  { route: 'GET /users/{userId}/profile', resource: 'user', action: 'read', owner: '{userId}' },
  { route: 'GET /health', resource: 'health', action: 'read', public: true },
  { route: 'GET /admin/{proxy+}', resource: 'policy', action: 'read' },
  { route: 'ANY /reports/{reportId}', resource: 'report', action: 'read' },
  // Any authenticated caller may connect: public skips the role decision, the condition keeps anonymous callers out.
  { route: 'GET /$connect', resource: 'socket', action: 'connect', public: true, condition: 'principal.kind != "anonymous"' },
];

/**
 * The operator's route table without its one request-dependent condition (a header):
 * decisions are then a pure function of (route, principal), and a known user's new
 * token may be answered from an answer decided for another of its tokens.
 */
export const PURE_ROUTES: RouteRule[] = ROUTES.filter((r) => !r.condition?.includes('request.'));

/** The effect of an IAM answer's first statement. */
export const effect = (res: { policyDocument: { Statement: { Effect: string }[] } }) => res.policyDocument.Statement[0]!.Effect;

/** A world with an issuer, a table, routes, users and handlers over the real runtime. */
export async function world(options: { ttl?: boolean; clock?: TestClock; cacheTtlSeconds?: number; routes?: RouteRule[] } = {}) {
  const idp = await makeIssuer();
  const rt = await testRuntime({
    ttl: options.ttl ?? true,
    ...(options.clock ? { clock: options.clock } : {}),
    env: { GATEHOUSE_ISSUERS: JSON.stringify([idp.config]), GATEHOUSE_CACHE_TTL_SECONDS: String(options.cacheTtlSeconds ?? 30) },
  });
  const now = rt.clock.seconds;
  await rt.store.policy.putRoutes(options.routes ?? ROUTES, now);
  // Org tokens and org roles are written only into orgs that exist.
  for (const id of ['acme', 'globex']) await rt.store.orgs.createOrg({ id, name: id, createdAt: now });
  await rt.store.users.putSiteRoles('root', ['site-admin'], now);
  await rt.store.users.putSiteRoles('auditor', ['site-viewer'], now);
  await rt.store.users.putMembership('acme', 'alice', ['org-viewer'], now);
  await rt.store.users.putMembership('acme', 'bob', ['org-admin'], now);
  await rt.store.users.putMembership('globex', 'bob', ['org-member'], now);
  const deps = rt.gateway;
  const rest = createRestAuthorizer(deps);
  const http = createHttpAuthorizer({ ...deps, mode: 'simple' });
  const httpIam = createHttpAuthorizer({ ...deps, mode: 'iam' });
  const ws = createWebSocketAuthorizer(deps);
  const jwtFor = (sub: string, claims: Record<string, unknown> = {}) => idp.sign(sub, rt.clock.seconds, claims);

  /** Creates a token item directly through the store; returns the credential. */
  const token = async (fields: Partial<TokenRecord> & Pick<TokenRecord, 'kind'>) => {
    const t = generateToken();
    const record: TokenRecord = {
      id: t.id,
      name: 'test',
      secretHash: hashSecret(t.secret),
      createdAt: rt.clock.seconds,
      expiresAt: rt.clock.seconds + 86400,
      ...fields,
    };
    await rt.store.tokens.createToken(record);
    return { credential: t.token, id: t.id, record };
  };
  const tokenEvent = (credential: string, method: string, path: string) => ({ type: 'TOKEN' as const, authorizationToken: `Bearer ${credential}`, methodArn: arn(method, path) });
  return { rt, idp, rest, http, httpIam, ws, jwtFor, token, tokenEvent };
}

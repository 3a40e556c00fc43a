import { createHash } from 'node:crypto';
import type { AuthorizerStore, PolicySnapshot } from '../store/types';
import { parseRouteKey, routeShape, type RouteRule } from './routes';

/** The set every API is decided with unless bound to another one (DESIGN §4, Policy sets). */
export const DEFAULT_SET = 'default';
/** The built-in, read-only set that decides the admin API itself. */
export const ADMIN_SET = 'admin';

/**
 * Condition of the admin endpoints whose object the path does not determine: any
 * signed-in caller reaches the function, which decides. There is no permission every
 * signed-in principal holds (an org token scoped to `project:read` holds nothing else),
 * so such a rule is `public` (no role decision, no gate) and this condition keeps
 * anonymous callers out; the expression context calls a request without a credential
 * `anonymous`, and a credential that does not verify never gets this far (401).
 */
export const SIGNED_IN = 'principal.kind != "anonymous"';

const inOrg = (route: string, resource: string, action: string): RouteRule => ({ route, resource, action, org: '{orgId}' });
const site = (route: string, resource: string, action: string): RouteRule => ({ route, resource, action });
const signedIn = (route: string, resource: string, action: string): RouteRule => ({ route, resource, action, public: true, condition: SIGNED_IN });

/**
 * The admin API's own route policies: for every admin endpoint whose path determines the
 * object, the permission its function checks, at the level it checks it (a rule without
 * `org` can only be allowed at site level, which is what the functions' site checks ask
 * for). So the gateway already refuses what the function would refuse, and never
 * refuses what it would allow (test/functions/admin-set.test.ts holds every endpoint to
 * that for a matrix of principals). `resource`/`action` of the signed-in rules name what
 * the function checks, for explanations; the gateway does not check them.
 */
export const ADMIN_SET_ROUTES: readonly RouteRule[] = Object.freeze([
  // Tokens (core/tokens/service.ts).
  signedIn('POST /tokens', 'token', 'create'), // a personal token: its owner is the caller
  inOrg('POST /orgs/{orgId}/tokens', 'token', 'create'),
  site('POST /site/tokens', 'token', 'create'),
  signedIn('GET /tokens', 'token', 'list'), // the caller's own
  inOrg('GET /orgs/{orgId}/tokens', 'token', 'list'),
  site('GET /site/tokens', 'token', 'list'),
  signedIn('GET /tokens/{id}', 'token', 'read'), // the token's kind, org and owner decide
  signedIn('DELETE /tokens/{id}', 'token', 'delete'),
  signedIn('POST /tokens/{id}/rotate', 'token', 'update'),
  signedIn('GET /tokens/{id}/access-log', 'token', 'read'),
  // Invitations (core/invitations/service.ts).
  inOrg('POST /orgs/{orgId}/invitations', 'invitation', 'create'),
  inOrg('GET /orgs/{orgId}/invitations', 'invitation', 'list'),
  inOrg('DELETE /orgs/{orgId}/invitations/{id}', 'invitation', 'delete'),
  signedIn('GET /invitations', 'invitation', 'list'), // addressed to the caller's verified email
  signedIn('POST /invitations/{id}/accept', 'invitation', 'accept'),
  signedIn('POST /invitations/{id}/decline', 'invitation', 'decline'),
  // Organizations, members, site roles (core/admin/orgs.ts).
  signedIn('GET /me', 'user', 'read'),
  site('POST /orgs', 'org', 'create'),
  signedIn('GET /orgs', 'org', 'list'), // everyone sees the orgs they belong to
  inOrg('GET /orgs/{orgId}', 'org', 'read'),
  inOrg('DELETE /orgs/{orgId}', 'org', 'delete'),
  inOrg('GET /orgs/{orgId}/members', 'membership', 'list'),
  inOrg('PUT /orgs/{orgId}/members/{userId}', 'org_role', 'assign'),
  signedIn('DELETE /orgs/{orgId}/members/{userId}', 'membership', 'delete'), // a member may leave without membership:delete
  site('PUT /users/{userId}/site-roles', 'site_role', 'assign'),
  // Roles, policies, explain, audit (core/admin/policies.ts, core/admin/policy-sets.ts).
  signedIn('GET /roles', 'role', 'list'),
  site('PUT /roles/{name}', 'role', 'update'),
  site('DELETE /roles/{name}', 'role', 'delete'),
  inOrg('GET /orgs/{orgId}/roles', 'role', 'list'),
  inOrg('PUT /orgs/{orgId}/roles/{name}', 'role', 'update'),
  inOrg('DELETE /orgs/{orgId}/roles/{name}', 'role', 'delete'),
  site('GET /policies/routes', 'policy', 'read'),
  site('PUT /policies/routes', 'policy', 'update'),
  site('GET /policies/gate', 'policy', 'read'),
  site('PUT /policies/gate', 'policy', 'update'),
  site('GET /policies/sets', 'policy', 'list'),
  site('GET /policies/sets/{set}', 'policy', 'read'),
  site('PUT /policies/sets/{set}', 'policy', 'update'),
  site('PATCH /policies/sets/{set}', 'policy', 'update'),
  site('DELETE /policies/sets/{set}', 'policy', 'delete'),
  site('GET /policies/apis', 'policy', 'list'),
  site('GET /policies/apis/{apiId}', 'policy', 'read'),
  site('PUT /policies/apis/{apiId}', 'policy', 'update'),
  site('DELETE /policies/apis/{apiId}', 'policy', 'delete'),
  site('POST /policies/sets/{set}/test', 'policy', 'read'), // runs tests, writes nothing
  site('GET /policies/sets/{set}/versions', 'policy', 'read'),
  site('GET /policies/sets/{set}/versions/{version}', 'policy', 'read'),
  site('POST /policies/sets/{set}/rollback', 'policy', 'update'),
  // Shadow mode: a candidate changes no live decision, but writing one is a policy write.
  site('GET /policies/sets/{set}/candidate', 'policy', 'read'),
  site('PUT /policies/sets/{set}/candidate', 'policy', 'update'),
  site('DELETE /policies/sets/{set}/candidate', 'policy', 'update'),
  site('GET /policies/sets/{set}/candidate/report', 'policy', 'read'),
  site('POST /policies/sets/{set}/candidate/promote', 'policy', 'update'),
  signedIn('POST /authz/explain', 'policy', 'read'), // one's own requests for anyone; others' for policy readers
  site('GET /audit', 'audit', 'read'),
].map((r) => Object.freeze(r)));

/**
 * Version of the admin set: a digest of its rules, so a deployment that changes them
 * changes the version (and warm authorizers reload), while every container of one
 * deployment agrees on it.
 */
export const ADMIN_SET_VERSION = `builtin-${createHash('sha256').update(JSON.stringify(ADMIN_SET_ROUTES)).digest('hex').slice(0, 12)}`;

/** A fresh copy of the admin set's rules (callers may not mutate the built-in ones). */
export function adminSetRoutes(): RouteRule[] {
  return ADMIN_SET_ROUTES.map((r) => ({ ...r }));
}

/**
 * The admin API's route keys as `adminRoutePolicies()` stored them before policy sets
 * existed (bootstrap-admin and `npm start` wrote one rule per key into the one route
 * table). Frozen: copies of exactly these rules found in a stored default set are
 * dropped when it is read, and for good when it is first written (the migration).
 */
const LEGACY_ADMIN_ROUTE_KEYS: ReadonlySet<string> = new Set([
  'POST /tokens', 'POST /orgs/{orgId}/tokens', 'POST /site/tokens', 'GET /tokens', 'GET /orgs/{orgId}/tokens',
  'GET /site/tokens', 'GET /tokens/{id}', 'DELETE /tokens/{id}', 'POST /tokens/{id}/rotate', 'GET /tokens/{id}/access-log',
  'POST /orgs/{orgId}/invitations', 'GET /orgs/{orgId}/invitations', 'DELETE /orgs/{orgId}/invitations/{id}', 'GET /invitations',
  'POST /invitations/{id}/accept', 'POST /invitations/{id}/decline', 'GET /me', 'POST /orgs', 'GET /orgs', 'GET /orgs/{orgId}',
  'DELETE /orgs/{orgId}', 'GET /orgs/{orgId}/members', 'PUT /orgs/{orgId}/members/{userId}', 'DELETE /orgs/{orgId}/members/{userId}',
  'PUT /users/{userId}/site-roles', 'GET /roles', 'PUT /roles/{name}', 'DELETE /roles/{name}', 'GET /orgs/{orgId}/roles',
  'PUT /orgs/{orgId}/roles/{name}', 'DELETE /orgs/{orgId}/roles/{name}', 'GET /policies/routes', 'PUT /policies/routes',
  'GET /policies/gate', 'PUT /policies/gate', 'POST /authz/explain', 'GET /audit',
]);

/** The rule `adminRoutePolicies()` produced for `route` before policy sets. */
function legacyAdminRule(route: string): RouteRule {
  return { route, resource: 'api', action: 'call', public: true, condition: SIGNED_IN };
}

/**
 * True for a stored copy of one of the old admin rules, exactly as it was written (an
 * operator's own variant, say with another condition, is theirs and stays).
 */
export function isLegacyAdminRule(rule: unknown): boolean {
  if (!rule || typeof rule !== 'object') return false;
  const r = rule as Record<string, unknown>;
  if (typeof r.route !== 'string' || !LEGACY_ADMIN_ROUTE_KEYS.has(r.route)) return false;
  const keys = Object.keys(r).sort();
  return keys.join(',') === 'action,condition,public,resource,route' && r.resource === 'api' && r.action === 'call' && r.public === true && r.condition === SIGNED_IN;
}


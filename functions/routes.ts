/**
 * The admin HTTP API: route key -> the function that serves it. One list, read by
 * `sst.config.ts` (API routes), the local gateway, and tests that check it against the
 * services' own route tables and against the built-in `admin` policy set
 * (`core/policy/admin-set.ts`), which decides these routes: nothing about the admin API
 * is stored in the table.
 */
export const ADMIN_ROUTES = {
  'POST /tokens': 'tokens',
  'POST /orgs/{orgId}/tokens': 'tokens',
  'POST /site/tokens': 'tokens',
  'GET /tokens': 'tokens',
  'GET /orgs/{orgId}/tokens': 'tokens',
  'GET /site/tokens': 'tokens',
  'GET /tokens/{id}': 'tokens',
  'DELETE /tokens/{id}': 'tokens',
  'POST /tokens/{id}/rotate': 'tokens',
  'GET /tokens/{id}/access-log': 'tokens',
  'POST /orgs/{orgId}/invitations': 'invitations',
  'GET /orgs/{orgId}/invitations': 'invitations',
  'DELETE /orgs/{orgId}/invitations/{id}': 'invitations',
  'GET /invitations': 'invitations',
  'POST /invitations/{id}/accept': 'invitations',
  'POST /invitations/{id}/decline': 'invitations',
  'GET /me': 'admin',
  'POST /orgs': 'admin',
  'GET /orgs': 'admin',
  'GET /orgs/{orgId}': 'admin',
  'DELETE /orgs/{orgId}': 'admin',
  'GET /orgs/{orgId}/members': 'admin',
  'PUT /orgs/{orgId}/members/{userId}': 'admin',
  'DELETE /orgs/{orgId}/members/{userId}': 'admin',
  'PUT /users/{userId}/site-roles': 'admin',
  'GET /roles': 'admin',
  'PUT /roles/{name}': 'admin',
  'DELETE /roles/{name}': 'admin',
  'GET /orgs/{orgId}/roles': 'admin',
  'PUT /orgs/{orgId}/roles/{name}': 'admin',
  'DELETE /orgs/{orgId}/roles/{name}': 'admin',
  'GET /policies/routes': 'admin',
  'PUT /policies/routes': 'admin',
  'GET /policies/gate': 'admin',
  'PUT /policies/gate': 'admin',
  'GET /policies/sets': 'admin',
  'GET /policies/sets/{set}': 'admin',
  'PUT /policies/sets/{set}': 'admin',
  'PATCH /policies/sets/{set}': 'admin',
  'DELETE /policies/sets/{set}': 'admin',
  'GET /policies/apis': 'admin',
  'GET /policies/apis/{apiId}': 'admin',
  'PUT /policies/apis/{apiId}': 'admin',
  'DELETE /policies/apis/{apiId}': 'admin',
  'POST /authz/explain': 'admin',
  'GET /audit': 'admin',
} as const satisfies Record<string, 'tokens' | 'invitations' | 'admin'>;

export type AdminFunction = (typeof ADMIN_ROUTES)[keyof typeof ADMIN_ROUTES];

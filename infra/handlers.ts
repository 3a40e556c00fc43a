/**
 * The Lambda functions: SST logical name, handler (`<module without .ts>.handler`)
 * and any setting of their own. The admin API's authorizer is the HTTP authorizer
 * module deployed a second time, pinned to the built-in `admin` policy set
 * (`GATEHOUSE_POLICY_SET`), so no policy set a customer edits can decide the admin API,
 * and answering with IAM policies, so a refused credential is a 401 (a simple answer can
 * only say 403). Plain data without SST globals, so `sst.config.ts`
 * (through `infra/functions.ts`) and the tests (which bundle each handler) share it.
 */
export const FUNCTIONS = {
  rest: { name: 'RestAuthorizer', handler: 'functions/authorizer/rest.handler' },
  http: { name: 'HttpAuthorizer', handler: 'functions/authorizer/http.handler', environment: { GATEHOUSE_HTTP_RESPONSE: 'simple' } },
  adminAuthorizer: { name: 'AdminAuthorizer', handler: 'functions/authorizer/http.handler', environment: { GATEHOUSE_HTTP_RESPONSE: 'iam', GATEHOUSE_POLICY_SET: 'admin' } },
  websocket: { name: 'WebSocketAuthorizer', handler: 'functions/authorizer/websocket.handler' },
  tokens: { name: 'Tokens', handler: 'functions/tokens.handler' },
  invitations: { name: 'Invitations', handler: 'functions/invitations.handler' },
  admin: { name: 'Admin', handler: 'functions/admin.handler' },
} as const satisfies Record<string, FunctionSpec>;

export interface FunctionSpec {
  name: string;
  handler: string;
  environment?: Record<string, string>;
}

export type FunctionKey = keyof typeof FUNCTIONS;

/** The module file of a handler string: `functions/tokens.handler` -> `functions/tokens.ts`. */
export function handlerModule(handler: string): string {
  return handler.replace(/\.handler$/, '.ts');
}

/**
 * The gatehouse HTTP authorizer as the admin API uses it, and as the README recommends
 * for any HTTP API. A simple answer is a bare yes/no that API Gateway reuses for every
 * request with the same identity-source values, on every route of the API (DESIGN §5).
 * So the key holds the credential, the HTTP method and the concrete path
 * (`$context.httpMethod`, `$context.path`: context variables, which HTTP API Lambda
 * authorizers accept as identity sources), never only `$context.routeKey`: that is the
 * route template, the same for `/orgs/acme/…` and `/orgs/globex/…`. What the key still
 * leaves out (query, other headers, source IP, time) no admin route policy reads
 * (test/deploy/admin-authorizer-cache.test.ts); customer routes that read it are flagged
 * `condition-not-cacheable`. 60 s is safe because every admin function re-resolves its
 * caller against the table on each call: a revoked token or a demoted user is refused by
 * the function at once; the TTL only spares invocations.
 */
export const ADMIN_AUTHORIZER = {
  identitySources: ['$request.header.Authorization', '$context.httpMethod', '$context.path'],
  ttl: '60 seconds',
} as const;

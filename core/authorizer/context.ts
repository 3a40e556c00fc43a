import type { ExpressionContext } from '../policy/expression';
import type { Principal } from '../rbac/types';

/** The request as the authorizer sees it, independent of the API Gateway flavour. */
export interface AuthzRequest {
  /** The extracted credential; undefined when none (or none that parses) was sent. */
  credential?: string;
  /** A credential was sent but does not parse (two headers, wrong scheme, junk): always 401. */
  malformedCredential?: boolean;
  /** HTTP method (upper-case). WebSocket `$connect` is `GET` on path `/$connect`. */
  method: string;
  /** Resource path without the stage, starting with `/`. */
  path: string;
  /** The API id of the method ARN: which policy set decides (unless the function pins one). */
  apiId?: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  query: Record<string, string>;
  sourceIp?: string;
}

/** API Gateway context values: flat strings, numbers and booleans only (DESIGN §5). */
export type GatewayContext = Record<string, string | number | boolean>;

/** The context handed to API Gateway. Unverified claims never become authorization data. */
export function gatewayContext(principal: Principal | undefined, tokenId?: string): GatewayContext {
  if (!principal) return { principalId: 'anonymous', kind: 'anonymous' };
  const ctx: GatewayContext = {
    principalId: principal.id,
    kind: principal.token ? 'token' : 'user',
    orgIds: Object.keys(principal.orgs).sort().join(','),
    siteRoles: principal.siteRoles.join(','),
  };
  if (principal.kind === 'user') ctx.userId = principal.id;
  if (tokenId) ctx.tokenId = tokenId;
  if (principal.email !== undefined && principal.emailVerified) ctx.email = principal.email;
  return ctx;
}

/** Builds the expression context (what `jexl` policies may read). */
export function expressionContext(
  principal: Principal | undefined,
  request: AuthzRequest,
  resource: ExpressionContext['resource'],
  pathParameters: Record<string, string>,
  nowMs: number,
): ExpressionContext {
  return {
    principal: principal
      ? {
          id: principal.id,
          kind: principal.token ? 'token' : principal.kind,
          ...(principal.email !== undefined ? { email: principal.email } : {}),
          emailVerified: principal.emailVerified === true,
          ...(principal.groups ? { groups: principal.groups } : {}),
          siteRoles: principal.siteRoles,
          orgs: principal.orgs,
          ...(principal.claims ? { claims: principal.claims } : {}),
        }
      : { id: 'anonymous', kind: 'anonymous', siteRoles: [], orgs: {} },
    request: {
      method: request.method,
      path: request.path,
      pathParameters,
      query: request.query,
      headers: request.headers,
      ...(request.sourceIp !== undefined ? { sourceIp: request.sourceIp } : {}),
    },
    resource,
    now: Math.floor(nowMs / 1000),
  };
}

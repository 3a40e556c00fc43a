import type { ExpressionContext } from '../policy/expression';
import type { Principal } from '../rbac/types';

/** The request as the authorizer sees it, independent of the API Gateway flavour. */
export interface AuthzRequest {
  /** The extracted credential; undefined when none (or none that parses) was sent. */
  credential?: string;
  /** With `credential`: its SHA-256 (base64url), computed once per request; caches key the credential by it, never by the credential itself. */
  credentialDigest?: string;
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

import type { HttpApiEvent } from '../../core/http/api';

/** Authorizer context as the gatehouse authorizer passes it to admin functions. */
export type AuthorizerContext = Record<string, string | number | boolean>;

/** Context of a user principal (email only when verified, as the authorizer does). */
export function userContext(userId: string, email?: string): AuthorizerContext {
  return { principalId: userId, userId, kind: 'user', orgIds: '', siteRoles: '', ...(email ? { email } : {}) };
}

/** Context of a gatehouse token principal. */
export function tokenContext(tokenId: string, principalId: string, userId?: string): AuthorizerContext {
  return { principalId, kind: 'token', tokenId, orgIds: '', siteRoles: '', ...(userId ? { userId } : {}) };
}

/** An HTTP API v2 proxy event carrying the authorizer context. */
export function httpEvent(
  method: string,
  path: string,
  options: { body?: unknown; rawBody?: string; context?: AuthorizerContext; query?: Record<string, string>; base64?: boolean; headers?: Record<string, string> } = {},
): HttpApiEvent {
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: new URLSearchParams(options.query ?? {}).toString(),
    headers: { 'content-type': 'application/json', ...options.headers },
    ...(options.query ? { queryStringParameters: options.query } : {}),
    ...(body !== undefined ? { body: options.base64 ? Buffer.from(body).toString('base64') : body, isBase64Encoded: options.base64 === true } : {}),
    requestContext: {
      http: { method, path, sourceIp: '203.0.113.7' },
      stage: '$default',
      requestId: `req-${Math.random().toString(36).slice(2)}`,
      ...(options.context ? { authorizer: { lambda: options.context } } : {}),
    },
  };
}

import { findAuthorization, findWebSocketProtocolCredential, parseBearer } from '../identity/credential';
import { sha256Base64url } from '../identity/digest';
import type { AuthzRequest } from '../authorizer/context';
import type { MethodArn } from './arn';

/** Shapes of the API Gateway authorizer events we read (only the fields used). */
export interface RestTokenEvent {
  type: 'TOKEN';
  authorizationToken?: unknown;
  methodArn?: unknown;
}
export interface RestRequestEvent {
  type: 'REQUEST';
  methodArn?: unknown;
  httpMethod?: unknown;
  path?: unknown;
  headers?: unknown;
  multiValueHeaders?: unknown;
  queryStringParameters?: unknown;
  requestContext?: { identity?: { sourceIp?: unknown }; routeKey?: unknown; eventType?: unknown } | null;
}
export interface HttpRequestEventV2 {
  version?: unknown;
  type?: unknown;
  routeArn?: unknown;
  routeKey?: unknown;
  rawPath?: unknown;
  headers?: unknown;
  queryStringParameters?: unknown;
  requestContext?: { http?: { method?: unknown; path?: unknown; sourceIp?: unknown }; stage?: unknown } | null;
}

const MAX_HEADERS = 200;
const MAX_VALUE = 16 * 1024;

/** Copies string-valued entries of an untrusted map; names lower-cased when asked. */
export function stringMap(value: unknown, lowerCase = false): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  if (!value || typeof value !== 'object' || Array.isArray(value)) return out;
  let n = 0;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string' || v.length > MAX_VALUE) continue;
    if (++n > MAX_HEADERS) break;
    const key = lowerCase ? k.toLowerCase() : k;
    // Repeated names in different case: keep neither silently winning; join like HTTP APIs do.
    out[key] = key in out ? `${out[key]},${v}` : v;
  }
  return out;
}

function hasHeader(headers: Record<string, unknown>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

/**
 * A request with its credential fields: the credential, or a flag that one was sent but
 * does not parse, the API id, and the source IP when it is a plausible one.
 */
function request(
  base: Omit<AuthzRequest, 'credential' | 'credentialDigest' | 'malformedCredential' | 'sourceIp'>,
  credential: string | undefined,
  sent: boolean,
  apiId: string | undefined,
  sourceIp?: unknown,
): AuthzRequest {
  const out: AuthzRequest = base;
  if (apiId !== undefined) out.apiId = apiId;
  if (credential !== undefined) {
    out.credential = credential;
    // Hashed once here: the repeat key and the resolved-credential cache both use it.
    out.credentialDigest = sha256Base64url(credential);
  } else if (sent) out.malformedCredential = true;
  if (typeof sourceIp === 'string' && sourceIp.length <= 64) out.sourceIp = sourceIp;
  return out;
}

/**
 * A REST TOKEN event's `authorizationToken` as sent, hashed (SHA-256, base64url): with the
 * method ARN, the whole event; undefined when it is not a string. The same two are the same
 * request (`RepeatedAnswers`), known before either is parsed.
 */
export function tokenDigest(event: RestTokenEvent): string | undefined {
  return typeof event.authorizationToken === 'string' ? sha256Base64url(event.authorizationToken) : undefined;
}

/** REST TOKEN: the credential is `authorizationToken`; method and path come from `methodArn`. */
export function fromRestToken(event: RestTokenEvent, arn: MethodArn): AuthzRequest {
  const credential = parseBearer(event.authorizationToken);
  const sent = event.authorizationToken !== undefined && event.authorizationToken !== null;
  // The token is the Authorization header's value (the identity source): expressions may read it as such.
  const headers = Object.create(null) as Record<string, string>;
  if (typeof event.authorizationToken === 'string' && event.authorizationToken.length <= MAX_VALUE) headers.authorization = event.authorizationToken;
  return request({ method: arn.method, path: arn.path, headers, query: Object.create(null) }, credential, sent, arn.apiId);
}

/**
 * What a REST TOKEN event asks, less its credential: method, path and API id from
 * `methodArn`, as `fromRestToken` reads them. A repeated TOKEN event is logged and
 * recorded as this (its answer is not decided again, so nothing reads its credential).
 */
export function tokenRoute(arn: MethodArn): AuthzRequest {
  return { method: arn.method, path: arn.path, headers: Object.create(null), query: Object.create(null), apiId: arn.apiId };
}

/** REST REQUEST: headers (one Authorization header, any case), method and path from `methodArn`. */
export function fromRestRequest(event: RestRequestEvent, arn: MethodArn): AuthzRequest {
  const raw = (event.headers && typeof event.headers === 'object' ? event.headers : {}) as Record<string, string | undefined>;
  const multi = (event.multiValueHeaders && typeof event.multiValueHeaders === 'object' ? event.multiValueHeaders : null) as Record<string, string[] | undefined> | null;
  const credential = findAuthorization(raw, multi);
  const base = { method: arn.method, path: arn.path, headers: stringMap(event.headers, true), query: stringMap(event.queryStringParameters) };
  return request(base, credential, hasHeader(raw, 'authorization'), arn.apiId, event.requestContext?.identity?.sourceIp);
}

/** WebSocket `$connect`: `Authorization`, else a `Sec-WebSocket-Protocol` entry. Route `GET /$connect`. */
export function fromWebSocketConnect(event: RestRequestEvent, arn: MethodArn): AuthzRequest {
  const raw = (event.headers && typeof event.headers === 'object' ? event.headers : {}) as Record<string, string | undefined>;
  const multi = (event.multiValueHeaders && typeof event.multiValueHeaders === 'object' ? event.multiValueHeaders : null) as Record<string, string[] | undefined> | null;
  const hasAuthorization = hasHeader(raw, 'authorization');
  const fromHeader = hasAuthorization ? findAuthorization(raw, multi) : undefined;
  const fromProtocol = findWebSocketProtocolCredential(raw);
  // Two credentials are a 401 however they arrive: a header and a protocol entry must agree.
  const conflicting = hasAuthorization && fromProtocol !== undefined && fromProtocol !== fromHeader;
  const credential = conflicting ? undefined : hasAuthorization ? fromHeader : fromProtocol;
  const base = { method: 'GET', path: '/$connect', headers: stringMap(event.headers, true), query: stringMap(event.queryStringParameters) };
  return request(base, credential, hasAuthorization, arn.apiId, event.requestContext?.identity?.sourceIp);
}

/** HTTP API payload 2.0: headers arrive lower-cased, repeated ones comma-joined. */
export function fromHttpV2(event: HttpRequestEventV2, arn: MethodArn): AuthzRequest {
  const headers = stringMap(event.headers, true);
  const credential = findAuthorization(headers);
  const base = { method: arn.method, path: arn.path, headers, query: stringMap(event.queryStringParameters) };
  return request(base, credential, hasHeader(headers, 'authorization'), arn.apiId, event.requestContext?.http?.sourceIp);
}

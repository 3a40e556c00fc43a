import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { isGatehouseError, InvalidInput, NotFound, GatehouseError } from '../errors';
import type { Logger } from '../log';
import type { Credential } from '../authorizer/principals';
import { findAuthorization } from '../identity/credential';
import { compileRouteTable, type RouteRule } from '../policy/routes';

/** The fields of an API Gateway HTTP API (v2) proxy event that the admin functions read. */
export interface HttpApiEvent {
  version?: string;
  routeKey?: string;
  rawPath?: string;
  rawQueryString?: string;
  headers?: Record<string, string | undefined> | null;
  queryStringParameters?: Record<string, string | undefined> | null;
  pathParameters?: Record<string, string | undefined> | null;
  body?: string | null;
  isBase64Encoded?: boolean;
  requestContext?: {
    http?: { method?: string; path?: string; sourceIp?: string };
    stage?: string;
    requestId?: string;
    authorizer?: { lambda?: Record<string, unknown> | null } | null;
  } | null;
}

export interface HttpApiResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** What an endpoint handler receives: the request, already parsed, and its verified caller. */
export interface ApiRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  /** Request headers, names lower-cased (HTTP API joins repeated headers with commas). */
  headers: Record<string, string>;
  /** Parsed JSON body; undefined when there was none. Validate it with `parseBody`. */
  body: unknown;
  caller: Credential;
  /**
   * The bearer credential of the request's one `Authorization` header (undefined without
   * exactly one), for an endpoint that must re-resolve the credential actually used, as
   * `POST /authz/explain` does. A function, so that serialising a request never writes
   * it out; never log what it returns.
   */
  bearer?: () => string | undefined;
  sourceIp?: string;
  requestId: string;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
  /**
   * Response headers (names lower-case), e.g. `etag`, or `location` on a 201 whose
   * resource has a GET URL (a path from the API root: the stage is added here).
   */
  headers?: Record<string, string>;
}

export type Endpoint = (req: ApiRequest) => Promise<ApiResponse>;

/** Largest accepted request body (bytes). */
export const MAX_BODY_BYTES = 64 * 1024;

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

/** The one place errors become HTTP answers: `{ error: { code, message } }`. */
export function errorResponse(err: GatehouseError): HttpApiResult {
  const body: { code: string; message: string; details?: Record<string, unknown> } = { code: err.code, message: err.message };
  if (err.details && err.status < 500) body.details = err.details;
  return { statusCode: err.status, headers: { ...JSON_HEADERS }, body: JSON.stringify({ error: body }) };
}

/** Validates a parsed body with a (strict) zod schema; any problem is a 400 naming the field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === undefined) throw new InvalidInput('invalid-body', 'a JSON body is required');
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'body';
    const code = issue?.code === 'unrecognized_keys' ? 'unknown-field' : 'invalid-field';
    const message = issue?.code === 'unrecognized_keys' ? `unknown field(s): ${(issue as { keys?: string[] }).keys?.join(', ')}` : `${where}: ${issue?.message ?? 'invalid'}`;
    throw new InvalidInput(code, message, { field: where });
  }
  return r.data;
}

/** The pagination query every listing takes: `limit` (1..100) and an opaque `cursor`. */
export const pageFields = {
  limit: z.string().regex(/^\d{1,3}$/, 'an integer 1..100').transform(Number).pipe(z.number().int().min(1).max(100)).optional(),
  cursor: z.string().max(4096).optional(),
};

/** Validates query parameters with a zod schema (400 on failure). */
export function parseQuery<T extends z.ZodType>(schema: T, query: Record<string, string>): z.infer<T> {
  const r = schema.safeParse(query);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'query';
    throw new InvalidInput('invalid-query', `${where}: ${issue?.message ?? 'invalid'}`, { field: where });
  }
  return r.data;
}

function decodeBody(event: HttpApiEvent): unknown {
  const raw = event.body;
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') throw new InvalidInput('invalid-body', 'body must be JSON');
  let text = raw;
  if (event.isBase64Encoded) {
    if (raw.length > (MAX_BODY_BYTES * 4) / 3 + 4) throw new InvalidInput('body-too-large', `body over ${MAX_BODY_BYTES} bytes`);
    text = Buffer.from(raw, 'base64').toString('utf8');
  }
  if (Buffer.byteLength(text, 'utf8') > MAX_BODY_BYTES) throw new InvalidInput('body-too-large', `body over ${MAX_BODY_BYTES} bytes`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidInput('invalid-json', 'body is not valid JSON');
  }
}

function stringRecord(v: unknown, lowerCaseKeys = false): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  if (!v || typeof v !== 'object') return out;
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) if (typeof val === 'string') out[lowerCaseKeys ? k.toLowerCase() : k] = val;
  return out;
}

/**
 * Builds an HTTP API v2 handler from `"METHOD /path/{param}"` -> endpoint. Every
 * endpoint sits behind the gatehouse authorizer and re-checks its caller: the
 * authorizer context is re-resolved against the store on every call. Nothing but
 * a GatehouseError's own status reaches the caller; anything else is a logged 500.
 */
export function createApi(options: {
  name: string;
  routes: Record<string, Endpoint>;
  resolveCaller: (ctx: Record<string, unknown> | undefined) => Promise<Credential>;
  logger: Logger;
}) {
  const rules: RouteRule[] = [];
  const endpoints = new Map<RouteRule, Endpoint>();
  for (const [route, endpoint] of Object.entries(options.routes)) {
    const rule: RouteRule = { route, resource: 'api', action: 'call' };
    rules.push(rule);
    endpoints.set(rule, endpoint);
  }
  const table = compileRouteTable(rules);

  return async (event: HttpApiEvent): Promise<HttpApiResult> => {
    const requestId = event?.requestContext?.requestId ?? randomUUID();
    const method = (event?.requestContext?.http?.method ?? '').toUpperCase();
    const rawPath = event?.requestContext?.http?.path ?? event?.rawPath ?? '';
    const stage = event?.requestContext?.stage;
    const path = stage && stage !== '$default' && rawPath.startsWith(`/${stage}/`) ? rawPath.slice(stage.length + 1) : rawPath;
    try {
      const match = table.match(method, path);
      if (!match) throw new NotFound('route-not-found', `no endpoint ${method} ${path.slice(0, 200)}`);
      const caller = await options.resolveCaller(event?.requestContext?.authorizer?.lambda ?? undefined);
      const body = decodeBody(event);
      const sourceIp = event?.requestContext?.http?.sourceIp;
      const requestHeaders = event?.headers;
      const res = await endpoints.get(match.rule)!({
        method,
        path,
        params: match.pathParameters,
        query: stringRecord(event?.queryStringParameters),
        headers: stringRecord(event?.headers, true),
        body,
        caller,
        bearer: () => findAuthorization(requestHeaders),
        ...(typeof sourceIp === 'string' ? { sourceIp } : {}),
        requestId,
      });
      const headers = { ...res.headers };
      // A Location from the API root; behind a named stage the stage is part of the URL.
      if (headers.location?.startsWith('/') && path !== rawPath) headers.location = `/${stage}${headers.location}`;
      if (res.status === 204 || res.body === undefined) return { statusCode: res.status, headers: { 'cache-control': 'no-store', ...headers }, body: '' };
      return { statusCode: res.status, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(res.body) };
    } catch (err) {
      if (isGatehouseError(err) && err.status < 500) {
        options.logger.info(`${options.name}.rejected`, { requestId, method, path: path.slice(0, 200), status: err.status, reason: err.code });
        return errorResponse(err);
      }
      const code = isGatehouseError(err) ? err.code : 'internal-error';
      options.logger.error(`${options.name}.failed`, { requestId, method, path: path.slice(0, 200), reason: code, error: (err as Error)?.name });
      const status = isGatehouseError(err) ? err.status : 500;
      return errorResponse(new GatehouseError(status === 503 ? 'unavailable' : 'internal-error', status === 503 ? 'service unavailable, try again' : 'internal error', status));
    }
  };
}

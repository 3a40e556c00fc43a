import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpApiEvent, HttpApiResult } from '../core/http/api';
import { LruCache } from '../core/cache/lru';
import { compileRouteTable, type RouteRule } from '../core/policy/routes';
import type { buildHandlers } from '../functions/apps';
import { ADMIN_ROUTES } from '../functions/routes';
import { iamAllows, type PolicyLike } from './iam';

type Handlers = ReturnType<typeof buildHandlers>;
type Target = 'tokens' | 'invitations' | 'admin' | 'demo';

const API_PREFIX = 'arn:aws:execute-api:local:000000000000:local/$default';
const MAX_BODY = 1024 * 1024;

/** The demo upstream: answers with what the authorizer passed on. */
export const DEMO_ROUTES = ['GET /demo/{proxy+}', 'ANY /demo/orgs/{orgId}/{proxy+}'];

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error('too large'), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  return size === 0 ? undefined : Buffer.concat(chunks).toString('utf8');
}

/**
 * A local API Gateway (HTTP API shape) in front of the real handlers, with API
 * Gateway's authorizer semantics: the answer is cached per identity source (the
 * Authorization header) for `authTtlSeconds` and applied to whatever route comes
 * next; `Unauthorized` is 401, a Deny or an ARN the cached policy does not cover is
 * 403, any other authorizer failure is 500. The integration receives the authorizer
 * context in `requestContext.authorizer.lambda`.
 */
export function createLocalGateway(options: { handlers: Handlers; authTtlSeconds: number; now?: () => number; log?: (line: string) => void }) {
  const now = options.now ?? Date.now;
  const rules: RouteRule[] = [];
  const targets = new Map<RouteRule, Target>();
  for (const [route, target] of [...Object.entries(ADMIN_ROUTES), ...DEMO_ROUTES.map((r) => [r, 'demo'] as const)]) {
    const rule: RouteRule = { route, resource: 'route', action: 'call' };
    rules.push(rule);
    targets.set(rule, target as Target);
  }
  const table = compileRouteTable(rules);
  const cache = new LruCache<string, PolicyLike & { context?: Record<string, string | number | boolean> }>({ maxEntries: 10_000, now });

  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://local');
    const path = url.pathname;
    try {
      const match = table.match(method, path);
      if (!match) return send(res, 404, { message: 'Not Found' });
      const body = await readBody(req);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k.toLowerCase()] = v;
      const query: Record<string, string> = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      const routeArn = `${API_PREFIX}/${method}${path}`;
      const identity = headers.authorization;
      if (!identity) return send(res, 401, { message: 'Unauthorized' });

      let answer = options.authTtlSeconds > 0 ? cache.get(identity) : undefined;
      if (!answer) {
        const event = {
          version: '2.0', type: 'REQUEST', routeArn, identitySource: [identity], routeKey: match.rule.route,
          rawPath: path, rawQueryString: url.search.slice(1), headers, queryStringParameters: query,
          requestContext: { http: { method, path, sourceIp: req.socket.remoteAddress ?? '127.0.0.1' }, stage: '$default' },
        };
        try {
          answer = (await options.handlers.httpIam(event)) as PolicyLike & { context?: Record<string, string | number | boolean> };
        } catch (err) {
          if ((err as Error).message === 'Unauthorized') return send(res, 401, { message: 'Unauthorized' });
          return send(res, 500, { message: 'Internal Server Error' });
        }
        if (options.authTtlSeconds > 0) cache.set(identity, answer, options.authTtlSeconds * 1000);
      }
      if (!iamAllows(answer, routeArn)) return send(res, 403, { message: 'Forbidden' });
      const context = answer.context ?? {};

      const target = targets.get(match.rule)!;
      if (target === 'demo') return send(res, 200, { method, path, context });
      const event: HttpApiEvent = {
        version: '2.0', routeKey: match.rule.route, rawPath: path, rawQueryString: url.search.slice(1), headers,
        ...(Object.keys(query).length ? { queryStringParameters: query } : {}), pathParameters: match.pathParameters,
        ...(body !== undefined ? { body, isBase64Encoded: false } : {}),
        requestContext: { http: { method, path, sourceIp: req.socket.remoteAddress ?? '127.0.0.1' }, stage: '$default', requestId: `local-${Date.now().toString(36)}`, authorizer: { lambda: context } },
      };
      const result: HttpApiResult = await options.handlers[target](event);
      res.writeHead(result.statusCode, result.headers);
      res.end(result.body);
    } catch (err) {
      if ((err as { status?: number }).status === 413) return send(res, 413, { message: 'Request Entity Too Large' }, { connection: 'close' });
      options.log?.(JSON.stringify({ level: 'error', event: 'local.gateway-error', error: (err as Error).message }));
      return send(res, 500, { message: 'Internal Server Error' });
    }
  };
}

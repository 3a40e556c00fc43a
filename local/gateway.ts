import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpApiEvent, HttpApiResult } from '../core/http/api';
import { LruCache } from '../core/cache/lru';
import { compileRouteTable, type RouteRule } from '../core/policy/routes';
import { LogKeys } from '../core/log';
import type { buildHandlers } from '../functions/apps';
import { concurrentInvocations, runInvocation } from '../functions/lambda';
import { ADMIN_ROUTES } from '../functions/routes';
import { iamAllows, type PolicyLike } from './iam';

type Handlers = ReturnType<typeof buildHandlers>;
type Target = 'tokens' | 'invitations' | 'admin' | 'demo';
type Answer = PolicyLike & { context?: Record<string, string | number | boolean> };

/** What the authorizer decided for a request, from its `authorizer.decision` log event. */
interface Decision {
  effect?: string;
  reason?: string;
}

/**
 * One readable line per request: method, path, status, the authorizer's outcome and
 * reason code, whether the answer came from the gateway's cache, and an admin function's
 * own refusal code. Printable ASCII only (a path cannot move the cursor or forge a line).
 */
export function requestLine(r: { method: string; path: string; status: number; outcome?: string; reason?: string; cached?: string; function?: string }): string {
  const clean = (s: string, max: number) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
  let line = `${clean(r.method, 10)} ${clean(r.path, 200)} -> ${r.status}`;
  if (r.outcome) line += ` ${r.outcome}`;
  if (r.reason) line += ` reason=${clean(r.reason, 60)}`;
  if (r.cached) line += ` cached${r.cached === 'same' ? '' : ` (decided for ${clean(r.cached, 200)})`}`;
  if (r.function) line += ` ${clean(r.function, 80)}`;
  return line;
}

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
 * context in `requestContext.authorizer.lambda`. Each request is printed through `log`
 * as one readable line ({@link requestLine}), the reason code taken from the decision
 * the authorizer logged for that request.
 */
export function createLocalGateway(options: { handlers: Handlers; authTtlSeconds: number; now?: () => number; log?: (line: string) => void }) {
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  // Requests are served concurrently here: each one's log events must stay its own.
  concurrentInvocations();
  let seq = 0;
  const rules: RouteRule[] = [];
  const targets = new Map<RouteRule, Target>();
  for (const [route, target] of [...Object.entries(ADMIN_ROUTES), ...DEMO_ROUTES.map((r) => [r, 'demo'] as const)]) {
    const rule: RouteRule = { route, resource: 'route', action: 'call' };
    rules.push(rule);
    targets.set(rule, target as Target);
  }
  const table = compileRouteTable(rules);
  /** Answers by identity source, with the decision that produced them (for the request line). */
  const cache = new LruCache<string, { answer: Answer; decision: Decision; routeArn: string }>({ maxEntries: 10_000, now });

  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://local');
    const path = url.pathname;
    const requestId = `local-${Date.now().toString(36)}-${(++seq).toString(36)}`;
    const line: Parameters<typeof requestLine>[0] = { method, path, status: 0 };
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      line.status = status;
      send(res, status, body, headers);
    };
    // Every handler call of this request runs as one invocation: its log lines carry this
    // request's id, and its events (the decision, a function's refusal) feed the line.
    const decision: Decision = {};
    const invocation = {
      keys: new LogKeys({ correlation_id: requestId }),
      listen: (_level: string, message: string, fields: Record<string, unknown> | undefined) => {
        if (message === 'authorizer.decision' && typeof fields?.effect === 'string') {
          decision.effect = fields.effect;
          if (typeof fields.reason === 'string') decision.reason = fields.reason;
        } else if (/^(tokens|invitations|admin)\.(rejected|failed)$/.test(message) && typeof fields?.reason === 'string') {
          line.function = `${message.split('.')[0]}=${fields.reason}`;
        }
      },
    };
    try {
      await runInvocation(invocation, () => serve());
    } finally {
      log(requestLine(line));
    }

    async function serve(): Promise<void> {
      try {
        const match = table.match(method, path);
        if (!match) return reply(404, { message: 'Not Found' });
        const body = await readBody(req);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k.toLowerCase()] = v;
        const query: Record<string, string> = {};
        for (const [k, v] of url.searchParams) query[k] = v;
        const routeArn = `${API_PREFIX}/${method}${path}`;
        const identity = headers.authorization;
        if (!identity) {
          // API Gateway refuses a request without its identity source before any authorizer runs.
          Object.assign(line, { outcome: 'unauthorized', reason: 'no-credential' });
          return reply(401, { message: 'Unauthorized' });
        }

        const hit = options.authTtlSeconds > 0 ? cache.get(identity) : undefined;
        let answer = hit?.answer;
        if (hit) {
          decision.reason = hit.decision.reason;
          line.cached = hit.routeArn === routeArn ? 'same' : hit.routeArn.slice(API_PREFIX.length + 1).replace(/^([A-Z]+)\//, '$1 /');
        } else {
          const event = {
            version: '2.0', type: 'REQUEST', routeArn, identitySource: [identity], routeKey: match.rule.route,
            rawPath: path, rawQueryString: url.search.slice(1), headers, queryStringParameters: query,
            requestContext: { http: { method, path, sourceIp: req.socket.remoteAddress ?? '127.0.0.1' }, stage: '$default' },
          };
          try {
            answer = (await options.handlers.httpIam(event)) as Answer;
          } catch (err) {
            Object.assign(line, { outcome: (err as Error).message === 'Unauthorized' ? 'unauthorized' : 'error', reason: decision.reason });
            if ((err as Error).message === 'Unauthorized') return reply(401, { message: 'Unauthorized' });
            return reply(500, { message: 'Internal Server Error' });
          }
          if (options.authTtlSeconds > 0) cache.set(identity, { answer, decision: { ...decision }, routeArn }, options.authTtlSeconds * 1000);
        }
        const allowed = iamAllows(answer!, routeArn);
        line.outcome = allowed ? 'allow' : 'deny';
        // A cached answer decided for another route says allow or deny for this one, but not why: no reason then.
        if (line.cached === undefined || line.cached === 'same') line.reason = decision.reason;
        if (!allowed) return reply(403, { message: 'Forbidden' });
        const context = answer!.context ?? {};

        const target = targets.get(match.rule)!;
        if (target === 'demo') return reply(200, { method, path, context });
        const event: HttpApiEvent = {
          version: '2.0', routeKey: match.rule.route, rawPath: path, rawQueryString: url.search.slice(1), headers,
          ...(Object.keys(query).length ? { queryStringParameters: query } : {}), pathParameters: match.pathParameters,
          ...(body !== undefined ? { body, isBase64Encoded: false } : {}),
          requestContext: { http: { method, path, sourceIp: req.socket.remoteAddress ?? '127.0.0.1' }, stage: '$default', requestId, authorizer: { lambda: context } },
        };
        const result: HttpApiResult = await options.handlers[target](event);
        line.status = result.statusCode;
        res.writeHead(result.statusCode, result.headers);
        res.end(result.body);
      } catch (err) {
        if ((err as { status?: number }).status === 413) return reply(413, { message: 'Request Entity Too Large' }, { connection: 'close' });
        line.function = `gateway-error=${(err as Error).message}`;
        return reply(500, { message: 'Internal Server Error' });
      }
    }
  };
}

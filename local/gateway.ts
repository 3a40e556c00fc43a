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

const MAX_BODY = 1024 * 1024;

/**
 * The two local APIs, as they would be in AWS: the admin API (at `/`) and the customer's
 * API (at `/demo`), each with its own API id in its ARNs and its own authorizer cache.
 */
export const LOCAL_APIS = {
  admin: { id: 'localadmin', prefix: 'arn:aws:execute-api:local:000000000000:localadmin/$default' },
  demo: { id: 'localdemo0', prefix: 'arn:aws:execute-api:local:000000000000:localdemo0/$default' },
} as const;

/** The customer API's one route: every method under `/demo` (the demo upstream, or `upstream`). */
export const DEMO_ROUTES = ['ANY /demo/{proxy+}'];

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

/** An HTTP API (v2) Lambda authorizer as the local gateway calls it. */
type AuthorizerFn = (event: never) => Promise<unknown>;

/**
 * Request headers as an HTTP API delivers them to authorizers and integrations: names
 * lower-cased, a repeated header's values joined with commas (Node's own parser would
 * keep only the first `Authorization`, hiding a second credential).
 */
export function joinedHeaders(rawHeaders: readonly string[]): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!;
    out[name] = name in out ? `${out[name]},${value}` : value;
  }
  return out;
}

/**
 * A local API Gateway in front of the real handlers: two HTTP APIs, as in AWS.
 * - The admin API (every route of `ADMIN_ROUTES`, at `/`) is decided by the admin
 *   authorizer (pinned to the built-in `admin` policy set, IAM answers) cached per
 *   (Authorization, method, path), the identity sources the deployment uses.
 * - The customer API (`ANY /demo/{proxy+}`) is decided by the gatehouse HTTP authorizer
 *   with IAM answers cached per Authorization header and applied, as API Gateway does,
 *   to whatever route of that API comes next; its integration is the demo upstream
 *   (`{ method, path, context }`) or, with `upstream`, the user's own service, which
 *   receives the request and the authorizer context as `x-gatehouse-*` headers (as an
 *   API Gateway parameter mapping would pass it).
 * `Unauthorized` is 401, a Deny or an ARN the answer does not cover is 403, any other
 * authorizer failure is 500; the functions receive the context in
 * `requestContext.authorizer.lambda`. Each request is printed through `log` as one
 * readable line ({@link requestLine}), the reason code taken from the decision the
 * authorizer logged for that request.
 */
export function createLocalGateway(options: {
  handlers: Handlers;
  /** The admin API's authorizer: the HTTP authorizer (IAM answers) of a runtime pinned to the `admin` set. */
  adminAuthorizer: AuthorizerFn;
  authTtlSeconds: number;
  now?: () => number;
  log?: (line: string) => void;
  /** Forward the customer API to this base URL instead of the demo upstream. */
  upstream?: string;
}) {
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
  /** Each API's answers by identity-source values, with the decision that produced them (for the request line). */
  const caches = {
    admin: new LruCache<string, { answer: Answer; decision: Decision; routeArn: string }>({ maxEntries: 10_000, now }),
    demo: new LruCache<string, { answer: Answer; decision: Decision; routeArn: string }>({ maxEntries: 10_000, now }),
  };

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
        const target = targets.get(match.rule)!;
        const api = target === 'demo' ? 'demo' : 'admin';
        const prefix = LOCAL_APIS[api].prefix;
        const body = await readBody(req);
        const headers = joinedHeaders(req.rawHeaders);
        const query: Record<string, string> = {};
        for (const [k, v] of url.searchParams) query[k] = v;
        const routeArn = `${prefix}/${method}${path}`;
        const identity = headers.authorization;
        if (!identity) {
          // API Gateway refuses a request without its identity source before any authorizer runs.
          Object.assign(line, { outcome: 'unauthorized', reason: 'no-credential' });
          return reply(401, { message: 'Unauthorized' });
        }

        // The admin API caches per (Authorization, method, path); the customer API per Authorization.
        const cacheKey = api === 'admin' ? JSON.stringify([identity, method, path]) : identity;
        const cache = caches[api];
        const hit = options.authTtlSeconds > 0 ? cache.get(cacheKey) : undefined;
        let answer = hit?.answer;
        if (hit) {
          decision.reason = hit.decision.reason;
          line.cached = hit.routeArn === routeArn ? 'same' : hit.routeArn.slice(prefix.length + 1).replace(/^([A-Z]+)\//, '$1 /');
        } else {
          const event = {
            version: '2.0', type: 'REQUEST', routeArn, identitySource: [identity], routeKey: match.rule.route,
            rawPath: path, rawQueryString: url.search.slice(1), headers, queryStringParameters: query,
            requestContext: { http: { method, path, sourceIp: req.socket.remoteAddress ?? '127.0.0.1' }, stage: '$default', requestId },
          };
          try {
            answer = (await (api === 'admin' ? options.adminAuthorizer(event as never) : options.handlers.httpIam(event as never))) as Answer;
          } catch (err) {
            Object.assign(line, { outcome: (err as Error).message === 'Unauthorized' ? 'unauthorized' : 'error', reason: decision.reason });
            if ((err as Error).message === 'Unauthorized') return reply(401, { message: 'Unauthorized' });
            return reply(500, { message: 'Internal Server Error' });
          }
          if (options.authTtlSeconds > 0) cache.set(cacheKey, { answer: answer!, decision: { ...decision }, routeArn }, options.authTtlSeconds * 1000);
        }
        const allowed = iamAllows(answer!, routeArn);
        line.outcome = allowed ? 'allow' : 'deny';
        // A cached answer decided for another route says allow or deny for this one, but not why: no reason then.
        if (line.cached === undefined || line.cached === 'same') line.reason = decision.reason;
        if (!allowed) return reply(403, { message: 'Forbidden' });
        const context = answer!.context ?? {};

        if (target === 'demo') {
          if (options.upstream === undefined) return reply(200, { method, path, context });
          return await forward(options.upstream, method, path + url.search, headers, body, context);
        }
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

    /** The user's own upstream: the request as received, plus the authorizer context as headers. */
    async function forward(base: string, method: string, pathAndQuery: string, headers: Record<string, string>, body: string | undefined, context: Record<string, string | number | boolean>): Promise<void> {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      for (const [k, v] of Object.entries(context)) out[`x-gatehouse-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`] = String(v);
      let upstream: Response;
      try {
        // API Gateway's own integration timeout is 30 s.
        upstream = await fetch(new URL(pathAndQuery, base), { method, headers: out, ...(body !== undefined && method !== 'GET' && method !== 'HEAD' ? { body } : {}), redirect: 'manual', signal: AbortSignal.timeout(30_000) });
      } catch {
        line.function = 'upstream=unreachable';
        return reply(502, { message: 'Bad Gateway' });
      }
      const text = await upstream.text();
      line.status = upstream.status;
      const back: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (!HOP_BY_HOP.has(k) && k !== 'content-length' && k !== 'content-encoding') back[k] = v;
      });
      res.writeHead(upstream.status, back);
      res.end(text);
    }
  };
}

/** Headers that belong to one connection and are never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);

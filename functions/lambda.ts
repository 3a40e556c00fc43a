import { AsyncLocalStorage } from 'node:async_hooks';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LogKeys, type LogLevel, type LogObserver } from '../core/log';
import type { Outcome } from '../core/metrics/classes';
import type { InvocationMetrics } from '../core/metrics/gatehouse';
import type { AuthorizerRuntime } from './authorizer/runtime';

/** What the code running for one request sees: its log keys, its metrics, and any extra listener. */
export interface Invocation {
  keys?: LogKeys;
  metrics?: InvocationMetrics;
  /** Sees every log event of the invocation (the local gateway reads the decision's reason here). */
  listen?: (level: LogLevel, message: string, fields: Record<string, unknown> | undefined) => void;
}

/**
 * The invocation in progress. Lambda runs one invocation at a time in an execution
 * environment, so a variable set around the handler is enough (as Powertools' Logger
 * does with its Lambda context), and costs nothing per promise. A process serving
 * requests concurrently (the local stack) calls {@link concurrentInvocations} first.
 */
let current: Invocation | undefined;
let scoped: AsyncLocalStorage<Invocation> | undefined;

/** The invocation whose code is running, if any. */
export function currentInvocation(): Invocation | undefined {
  return scoped ? scoped.getStore() : current;
}

/** Runs `fn` as `invocation`: its log lines carry its keys, its events feed its metrics and listener. */
export async function runInvocation<T>(invocation: Invocation, fn: () => Promise<T>): Promise<T> {
  if (scoped) return scoped.run(invocation, fn);
  const previous = current;
  current = invocation;
  try {
    return await fn();
  } finally {
    current = previous;
  }
}

/** Switches to one invocation per async context: for a process that serves requests concurrently. */
export function concurrentInvocations(): void {
  scoped ??= new AsyncLocalStorage<Invocation>();
}

/** The log keys of the current invocation (for the line writer). */
export const invocationKeys = (): LogKeys | undefined => currentInvocation()?.keys;

/**
 * The logger tap: every event of an invocation, whatever the level, goes to its metrics
 * and listener. It runs inside the code that logs (a decision, a failure): nothing it
 * does may change that code's course, so whatever it throws stays here.
 */
export const invocationObserver: LogObserver = {
  active: () => currentInvocation() !== undefined,
  observe(level, message, fields) {
    const inv = currentInvocation();
    try {
      inv?.metrics?.observe(level, message, fields);
      inv?.listen?.(level, message, fields);
    } catch {
      // Metrics are best effort; the answer is not.
    }
  },
};

/** stdout, written directly: Lambda keeps a JSON line as it is (console.* would wrap it in a string). */
export function stdoutSink(line: string): void {
  process.stdout.write(line + '\n');
}

/**
 * Times every DynamoDB call of the current invocation (retries included) and counts
 * throttles and errors. Added once per client (a second add replaces the first).
 */
export function instrumentDynamo(client: DynamoDBClient): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const metrics = currentInvocation()?.metrics;
      if (!metrics) return next(args);
      const start = performance.now();
      try {
        const out = await next(args);
        metrics.dynamoCall(performance.now() - start);
        return out;
      } catch (err) {
        metrics.dynamoCall(performance.now() - start, (err as Error)?.name ?? 'Error');
        throw err;
      }
    },
    { step: 'initialize', name: 'gatehouseMetrics', override: true },
  );
}

/** A fetch that counts requests to issuers' key-set endpoints (the only fetches the runtime makes). */
export function countingFetch(base?: typeof fetch): typeof fetch {
  return (input, init) => {
    currentInvocation()?.metrics?.keySetFetch();
    // Read at call time: the global may be replaced after the runtime is built.
    return (base ?? globalThis.fetch)(input, init);
  };
}

/** The part of Lambda's context object the wrapper reads. */
export interface LambdaContextLike {
  awsRequestId?: string;
}

export type HandlerKind = 'rest' | 'http' | 'websocket' | 'tokens' | 'invitations' | 'admin';

let coldStart = true;

/**
 * A Lambda handler around a gatehouse handler: every line it logs carries Lambda's
 * request id (`context.awsRequestId`), the X-Ray trace id and API Gateway's request id
 * (`requestContext.requestId`), and when it ends its metrics are written as one EMF line
 * (more only when one invocation needs two values of one dimension). Authorizers' answers
 * and errors pass through untouched.
 */
export function lambda<E, R>(rt: Pick<AuthorizerRuntime, 'metrics'>, kind: HandlerKind, handler: (event: E) => Promise<R>): (event: E, context?: LambdaContextLike) => Promise<R> {
  // Lambda Managed Instances may run several invocations at once in one environment.
  if (process.env.AWS_LAMBDA_MAX_CONCURRENCY) concurrentInvocations();
  rt.metrics.watchCaches(handler);
  const authorizer = kind === 'rest' || kind === 'http' || kind === 'websocket';
  return (event, context) => {
    const metrics = rt.metrics.begin(authorizer ? defaultFlavour(kind, event) : undefined);
    const keys = new LogKeys({
      cold_start: coldStart,
      function_request_id: context?.awsRequestId,
      xray_trace_id: traceId(invokeStore()?.getXRayTraceId?.() ?? process.env._X_AMZN_TRACE_ID),
      correlation_id: gatewayRequestId(event),
    });
    coldStart = false;
    return runInvocation({ keys, metrics }, async () => {
      try {
        const answer = await handler(event);
        if (authorizer) metrics.answered(answerOutcome(answer));
        return answer;
      } catch (err) {
        if (authorizer) metrics.answered((err as Error)?.message === 'Unauthorized' ? 'unauthorized' : 'error');
        throw err;
      } finally {
        try {
          rt.metrics.finish(metrics);
        } catch {
          // Writing metrics never changes an answer or hides an error.
        }
      }
    });
  };
}

/** The runtime's per-invocation store, where concurrent invocations keep their trace ids (the environment variable is shared then). */
function invokeStore(): { getXRayTraceId?: () => string | undefined } | undefined {
  return (globalThis as { awslambda?: { InvokeStore?: { getXRayTraceId?: () => string | undefined } } }).awslambda?.InvokeStore;
}

/** The flavour of an authorizer event, for lines that do not name it (an unreadable ARN). */
function defaultFlavour(kind: HandlerKind, event: unknown): string {
  if (kind === 'rest') return (event as { type?: unknown })?.type === 'TOKEN' ? 'rest-token' : 'rest-request';
  return kind;
}

/** API Gateway's request id, where the event has one (REST TOKEN events do not). */
function gatewayRequestId(event: unknown): string | undefined {
  const id = (event as { requestContext?: { requestId?: unknown } } | undefined)?.requestContext?.requestId;
  return typeof id === 'string' ? id : undefined;
}

/** The `Root` of `_X_AMZN_TRACE_ID` (`Root=1-…;Parent=…;Sampled=…`), as Powertools logs it. */
export function traceId(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const root = /(?:^|;)\s*Root=([^;]+)/.exec(header);
  return root ? root[1] : header.split(';')[0];
}

/** What an authorizer's answer says: an IAM policy's first statement, or a simple response. */
export function answerOutcome(answer: unknown): Outcome {
  const a = answer as { isAuthorized?: unknown; policyDocument?: { Statement?: { Effect?: unknown }[] } } | undefined;
  if (typeof a?.isAuthorized === 'boolean') return a.isAuthorized ? 'allow' : 'deny';
  return a?.policyDocument?.Statement?.[0]?.Effect === 'Allow' ? 'allow' : 'deny';
}

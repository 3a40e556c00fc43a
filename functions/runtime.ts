import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Authorizer } from '../core/authorizer/authorize';
import { PrincipalResolver } from '../core/authorizer/principals';
import { AuditRepo } from '../core/store/dynamo/audit';
import { parseSettings, type Settings } from '../core/config/settings';
import { JwtVerifier } from '../core/identity/jwt';
import { createLineWriter, createLogger, fromLambdaLogLevel, type Logger } from '../core/log';
import { MetricsRecorder } from '../core/metrics/gatehouse';
import { createDynamoStore, type DynamoStore } from '../core/store/dynamo/index';
import { countingFetch, instrumentDynamo, invocationKeys, invocationObserver, stdoutSink } from './lambda';

/** Everything a handler needs, built once per Lambda container (module scope). */
export interface Runtime {
  settings: Settings;
  logger: Logger;
  /** The container's metrics (EMF), written when each invocation ends (see `functions/lambda.ts`). */
  metrics: MetricsRecorder;
  store: DynamoStore;
  jwt: JwtVerifier;
  authorizer: Authorizer;
  /** Admin functions re-check their caller against fresh data: no caching. */
  callers: PrincipalResolver;
  audit: AuditRepo;
  now: () => number;
}

/**
 * Builds the runtime from the environment. Bad configuration throws here, at cold
 * start, with a message naming the field. `overrides` serve tests and the local stack.
 */
export function createRuntime(
  env: Record<string, string | undefined> = process.env,
  overrides: { client?: DynamoDBClient; now?: () => number; logSink?: (line: string) => void; fetch?: typeof fetch } = {},
): Runtime {
  const settings = parseSettings(withLambdaLogLevel(env));
  const now = overrides.now ?? Date.now;
  const writer = createLineWriter({ sink: overrides.logSink ?? stdoutSink, now, keys: invocationKeys });
  const logger = createLogger({ level: settings.logLevel, writer, observer: invocationObserver });
  const metrics = new MetricsRecorder({ functionName: env.AWS_LAMBDA_FUNCTION_NAME || 'local', now, write: (doc) => writer.write('info', 'metrics', doc) });
  const client = overrides.client ?? new DynamoDBClient({ maxAttempts: 2 });
  instrumentDynamo(client);
  const store = createDynamoStore({ client, tableName: settings.tableName });
  // The authorizer caches whole resolved principals (per credential, never past exp),
  // so the verifier's own cache would only hold the same tokens twice.
  const jwt = new JwtVerifier({ issuers: settings.issuers, now, cacheSize: 0, fetch: countingFetch(overrides.fetch) });
  const authorizer = new Authorizer({ store, jwt, logger, now, cacheTtlSeconds: settings.cacheTtlSeconds });
  const callers = new PrincipalResolver({ store, jwt, now, cacheTtlSeconds: 0 });
  const audit = new AuditRepo(store.db);
  metrics.watchCaches(authorizer);
  return { settings, logger, metrics, store, jwt, authorizer, callers, audit, now };
}

/** `GATEHOUSE_LOG_LEVEL`, or when it is unset the level Lambda's logging controls name (`AWS_LAMBDA_LOG_LEVEL`). */
function withLambdaLogLevel(env: Record<string, string | undefined>): Record<string, string | undefined> {
  if (env.GATEHOUSE_LOG_LEVEL?.trim()) return env;
  const lambdaLevel = fromLambdaLogLevel(env.AWS_LAMBDA_LOG_LEVEL);
  return lambdaLevel ? { ...env, GATEHOUSE_LOG_LEVEL: lambdaLevel } : env;
}

let shared: Runtime | undefined;

/** The container's runtime, created on first use (module-scope reuse across warm invocations). */
export function runtime(): Runtime {
  shared ??= createRuntime();
  return shared;
}

/** Replaces the shared runtime (tests and the local stack). */
export function setRuntime(r: Runtime | undefined): void {
  shared = r;
}

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { TokenActivity } from '../../core/authorizer/activity';
import { Authorizer } from '../../core/authorizer/authorize';
import { createCaches, type AuthorizerCaches } from '../../core/authorizer/caches';
import { PolicySource } from '../../core/authorizer/policy';
import { PrincipalResolver } from '../../core/authorizer/principals';
import { ShadowDecisions } from '../../core/authorizer/shadow';
import { SharedDecisions } from '../../core/authorizer/shared';
import { parseSettings, type Settings } from '../../core/config/settings';
import { IamAnswers } from '../../core/gateway/answers';
import type { GatewayDeps } from '../../core/gateway/handlers';
import { RepeatedAnswers } from '../../core/gateway/repeats';
import { JwtVerifier } from '../../core/identity/jwt';
import { createLineWriter, createLogger, fromLambdaLogLevel, type Logger } from '../../core/log';
import { MetricsRecorder } from '../../core/metrics/gatehouse';
import { createAuthorizerStore, type AuthorizerDynamoStore } from '../../core/store/dynamo/authorizer';
import { TimeBudgetedClient, type StoreTimeBudget } from '../../core/store/dynamo/client';
import type { Db } from '../../core/store/dynamo/db';
import { countingFetch, instrumentDynamo, invocationKeys, invocationObserver, stdoutSink } from '../lambda';

/**
 * What an authorizer function needs, built once per Lambda container (module scope).
 * The admin functions' runtime (`functions/runtime.ts`) is this over the full store, plus
 * what only they use; the authorizers' bundles are built from this module and carry none of it.
 */
export interface AuthorizerRuntime<S extends AuthorizerDynamoStore = AuthorizerDynamoStore> {
  settings: Settings;
  logger: Logger;
  /** The container's metrics (EMF), written when each invocation ends (see `functions/lambda.ts`). */
  metrics: MetricsRecorder;
  store: S;
  jwt: JwtVerifier;
  /** The authorizer's caches (bounds in core/authorizer/caches.ts). */
  caches: AuthorizerCaches;
  /** The authorizer's credential resolver (cached). */
  principals: PrincipalResolver;
  policies: PolicySource;
  authorizer: Authorizer;
  answers: IamAnswers;
  /** What the authorizer handlers are built from (`createRestAuthorizer(rt.gateway)`). */
  gateway: GatewayDeps;
  now: () => number;
}

/** What tests and the local stack replace when they build a runtime. */
export interface RuntimeOverrides {
  client?: DynamoDBClient;
  now?: () => number;
  logSink?: (line: string) => void;
  fetch?: typeof fetch;
  shadowFlushMs?: number;
}

/**
 * Every DynamoDB call's time budget (DESIGN §8: a stalled store fails closed within 2 s,
 * well under the functions' 10 s timeout). DynamoDB answers in milliseconds in-region, so
 * two attempts of 700 ms are generous; the 1.5 s deadline per call covers both attempts
 * and the back-off between them.
 */
export const STORE_TIME_BUDGET: StoreTimeBudget = { maxAttempts: 2, connectMs: 300, attemptMs: 700, callMs: 1500 };

/**
 * Builds an authorizer's runtime from the environment. Bad configuration throws here, at
 * cold start, with a message naming the field. `overrides` serve tests and the local stack.
 */
export function createAuthorizerRuntime(env: Record<string, string | undefined> = process.env, overrides: RuntimeOverrides = {}): AuthorizerRuntime {
  return buildAuthorizerRuntime(env, overrides, createAuthorizerStore);
}

/** {@link createAuthorizerRuntime} over the store `storeFor` builds on the runtime's table (the admin runtime passes the full store). */
export function buildAuthorizerRuntime<S extends AuthorizerDynamoStore>(
  env: Record<string, string | undefined>,
  overrides: RuntimeOverrides,
  storeFor: (db: Db) => S,
): AuthorizerRuntime<S> {
  const settings = parseSettings(withLambdaLogLevel(env));
  const now = overrides.now ?? Date.now;
  const writer = createLineWriter({ sink: overrides.logSink ?? stdoutSink, now, keys: invocationKeys });
  const logger = createLogger({ level: settings.logLevel, writer, observer: invocationObserver });
  const metrics = new MetricsRecorder({ functionName: env.AWS_LAMBDA_FUNCTION_NAME || 'local', now, write: (doc) => writer.write('info', 'metrics', doc) });
  const client = overrides.client ?? new TimeBudgetedClient({}, STORE_TIME_BUDGET);
  instrumentDynamo(client);
  const store = storeFor({ client, tableName: settings.tableName });
  const jwt = new JwtVerifier({ issuers: settings.issuers, now, fetch: countingFetch(overrides.fetch) });
  const ttl = settings.cacheTtlSeconds;
  const caches = createCaches(now);
  const principals = new PrincipalResolver({ store, jwt, now, cacheTtlSeconds: ttl, caches });
  const policies = new PolicySource({ store, now, ttlSeconds: ttl, logger, ...(settings.policySet ? { pinnedSet: settings.policySet } : {}) });
  const activity = new TokenActivity({ store, logger, now });
  const shadow = new ShadowDecisions({ store, logger, now, ...(overrides.shadowFlushMs !== undefined ? { flushIntervalMs: overrides.shadowFlushMs } : {}) });
  const decisions = new SharedDecisions({ cache: caches.decisions, ttlMs: ttl * 1000 });
  const authorizer = new Authorizer({ principals, policies, decisions, activity, shadow, logger, now });
  const answers = new IamAnswers({ cache: caches.answers, shared: caches.shared, logger, now, ttlMs: ttl * 1000 });
  const gateway: GatewayDeps = { authorizer, answers, repeats: new RepeatedAnswers({ cache: caches.repeats, now }), logger };
  metrics.watchCaches({ cacheCounters: () => Object.entries(caches).map(([name, c]) => ({ name, hits: c.hits, misses: c.misses })) });
  return { settings, logger, metrics, store, jwt, caches, principals, policies, authorizer, answers, gateway, now };
}

/** `GATEHOUSE_LOG_LEVEL`, or when it is unset the level Lambda's logging controls name (`AWS_LAMBDA_LOG_LEVEL`). */
function withLambdaLogLevel(env: Record<string, string | undefined>): Record<string, string | undefined> {
  if (env.GATEHOUSE_LOG_LEVEL?.trim()) return env;
  const lambdaLevel = fromLambdaLogLevel(env.AWS_LAMBDA_LOG_LEVEL);
  return lambdaLevel ? { ...env, GATEHOUSE_LOG_LEVEL: lambdaLevel } : env;
}

let shared: AuthorizerRuntime | undefined;

/** The container's authorizer runtime, created on first use (module-scope reuse across warm invocations). */
export function authorizerRuntime(): AuthorizerRuntime {
  shared ??= createAuthorizerRuntime();
  return shared;
}

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Authorizer } from '../core/authorizer/authorize';
import { PrincipalResolver } from '../core/authorizer/principals';
import { AuditRepo } from '../core/store/dynamo/audit';
import { parseSettings, type Settings } from '../core/config/settings';
import { JwtVerifier } from '../core/identity/jwt';
import { createLogger, type Logger } from '../core/log';
import { singleSetView } from '../core/policy/admin-set';
import { createDynamoStore, type DynamoStore } from '../core/store/dynamo/index';

/** Everything a handler needs, built once per Lambda container (module scope). */
export interface Runtime {
  settings: Settings;
  logger: Logger;
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
  const settings = parseSettings(env);
  const now = overrides.now ?? Date.now;
  const logger = createLogger({ level: settings.logLevel, now, ...(overrides.logSink ? { sink: overrides.logSink } : {}) });
  const client = overrides.client ?? new DynamoDBClient({ maxAttempts: 2 });
  const store = createDynamoStore({ client, tableName: settings.tableName });
  // The authorizer caches whole resolved principals (per credential, never past exp),
  // so the verifier's own cache would only hold the same tokens twice.
  const jwt = new JwtVerifier({ issuers: settings.issuers, now, cacheSize: 0, ...(overrides.fetch ? { fetch: overrides.fetch } : {}) });
  // Until the authorizer picks a policy set per API, it decides every API with one view:
  // the default set with the admin endpoints laid over it (see singleSetView).
  const authorizer = new Authorizer({ store: singleSetView(store), jwt, logger, now, cacheTtlSeconds: settings.cacheTtlSeconds });
  const callers = new PrincipalResolver({ store, jwt, now, cacheTtlSeconds: 0 });
  const audit = new AuditRepo(store.db);
  return { settings, logger, store, jwt, authorizer, callers, audit, now };
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

import { createCaches } from '../core/authorizer/caches';
import { PrincipalResolver } from '../core/authorizer/principals';
import { AuditRepo } from '../core/store/dynamo/audit';
import { createDynamoStore, type DynamoStore } from '../core/store/dynamo/index';
import { buildAuthorizerRuntime, type AuthorizerRuntime, type RuntimeOverrides } from './authorizer/runtime';

export { STORE_TIME_BUDGET } from './authorizer/runtime';

/** Everything a handler needs, built once per Lambda container (module scope): the authorizer's runtime over the full store, and the admin side. */
export interface Runtime extends AuthorizerRuntime<DynamoStore> {
  /** Admin functions re-check their caller against fresh data: no caching. */
  callers: PrincipalResolver;
  audit: AuditRepo;
}

/**
 * Builds the runtime from the environment. Bad configuration throws here, at cold
 * start, with a message naming the field. `overrides` serve tests and the local stack.
 */
export function createRuntime(env: Record<string, string | undefined> = process.env, overrides: RuntimeOverrides = {}): Runtime {
  const base = buildAuthorizerRuntime(env, overrides, (db) => createDynamoStore(db));
  const { store, jwt, now } = base;
  // Admin functions: the same resolver shape with nothing cached (TTL 0 stores nothing).
  const callers = new PrincipalResolver({ store, jwt, now, cacheTtlSeconds: 0, caches: createCaches(now, 1e-4) });
  const audit = new AuditRepo(store.db);
  return { ...base, callers, audit };
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

import type { PrincipalResolver } from '../authorizer/principals';
import { Forbidden, NotFound, isGatehouseError } from '../errors';
import type { Logger } from '../log';
import { RoleCatalog } from '../rbac/catalog';
import type { Principal } from '../rbac/types';
import type { AuditRecord, AuditRepo } from '../store/dynamo/audit';
import type { DynamoStore } from '../store/dynamo/index';

/** What the admin-side services (tokens, invitations, admin) are built from. */
export interface AdminDeps {
  store: DynamoStore;
  audit: AuditRepo;
  callers: PrincipalResolver;
  logger: Logger;
  /** Milliseconds since the epoch. */
  now: () => number;
}

/** Current epoch seconds. */
export function nowSeconds(deps: Pick<AdminDeps, 'now'>): number {
  return Math.floor(deps.now() / 1000);
}

/** The role catalog as stored now (admin checks use fresh data, not the authorizer's cache). */
export async function freshCatalog(deps: Pick<AdminDeps, 'store'>): Promise<RoleCatalog> {
  return new RoleCatalog((await deps.store.loadPolicy()).roles);
}

/** The id an audit record names as actor: user id, or `token:<id>` (with the owner for personal tokens). */
export function actorId(principal: Principal): string {
  if (principal.token && principal.kind === 'user') return `${principal.id} (token:${principal.token.id})`;
  return principal.id;
}

/**
 * Runs a mutation and writes its audit record, whatever the outcome: `allowed`
 * when it succeeded, `denied` for 403/404 (with the reason code), `failed` otherwise.
 * The audit write itself failing turns a success into a 503 only if the mutation
 * had not happened yet; after it, the failure is logged.
 */
export async function audited<T>(
  deps: Pick<AdminDeps, 'audit' | 'logger' | 'now'>,
  entry: { actor: Principal; action: string; target: string },
  fn: () => Promise<T>,
): Promise<T> {
  const base = { at: nowSeconds(deps), actor: actorId(entry.actor), action: entry.action, target: entry.target.slice(0, 512) };
  const write = async (record: AuditRecord) => {
    try {
      await deps.audit.write(record);
    } catch (err) {
      deps.logger.error('audit.write-failed', { action: record.action, target: record.target, reason: (err as { code?: string }).code ?? 'unknown' });
    }
  };
  try {
    const result = await fn();
    await write({ ...base, outcome: 'allowed' });
    return result;
  } catch (err) {
    const denied = err instanceof Forbidden || err instanceof NotFound;
    await write({ ...base, outcome: denied ? 'denied' : 'failed', reason: isGatehouseError(err) ? err.code : 'internal-error' });
    throw err;
  }
}

import { InvalidInput } from '../errors';
import type { Permission } from './types';

/** Resource and action names: lower-case, or `*`. */
export const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;

/** True when `name` is a valid resource/action name or the wildcard. */
export function isPermissionName(name: unknown): name is string {
  return typeof name === 'string' && (name === '*' || NAME_RE.test(name));
}

/** True when the permission names this (type, action), wildcards included. */
export function permissionMatches(p: Permission, type: string, action: string): boolean {
  return (p.resource === '*' || p.resource === type) && (p.action === '*' || p.action === action);
}

/**
 * Evaluates one level's permissions: a matching negated permission wins, then any
 * matching grant. Returns the deciding permission, or undefined when none matched.
 */
export function evaluateLevel(
  perms: readonly { permission: Permission; role: string }[],
  type: string,
  action: string,
): { effect: 'allow' | 'deny'; permission: Permission; role: string } | undefined {
  let grant: { permission: Permission; role: string } | undefined;
  for (const entry of perms) {
    if (!permissionMatches(entry.permission, type, action)) continue;
    if (entry.permission.negate) return { effect: 'deny', ...entry };
    grant ??= entry;
  }
  return grant ? { effect: 'allow', ...grant } : undefined;
}

/** Parses a scope string `resource:action` into a permission. */
export function parseScope(scope: unknown): Permission {
  if (typeof scope !== 'string') throw new InvalidInput('invalid-scope', 'a scope must be a string "resource:action"');
  const parts = scope.split(':');
  if (parts.length !== 2 || !isPermissionName(parts[0]) || !isPermissionName(parts[1])) {
    throw new InvalidInput('invalid-scope', `invalid scope ${JSON.stringify(scope.slice(0, 80))}: expected "resource:action" with lower-case names or *`);
  }
  return { resource: parts[0]!, action: parts[1]! };
}

/**
 * A stored token's scopes as permissions, for the authorizer and the grant ceiling alike:
 * undefined (all of the holder's rights) when it has none, and nothing at all when a
 * stored scope no longer parses (fail closed).
 */
export function storedScopes(scopes: readonly string[] | undefined): Permission[] | undefined {
  if (scopes === undefined) return undefined;
  try {
    return scopes.map(parseScope);
  } catch {
    return [];
  }
}

/** Formats a permission back into scope syntax. */
export function formatScope(p: Permission): string {
  return `${p.resource}:${p.action}`;
}

/** True when some scope permits (type, action). Scopes are grants only. */
export function scopesAllow(scopes: readonly Permission[], type: string, action: string): boolean {
  return scopes.some((s) => !s.negate && permissionMatches(s, type, action));
}

/** Validates an unknown value as a permission (used for custom roles). */
export function parsePermission(value: unknown, where: string): Permission {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInput('invalid-permission', `${where}: expected { resource, action, negate? }`);
  }
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (k !== 'resource' && k !== 'action' && k !== 'negate') throw new InvalidInput('invalid-permission', `${where}: unknown field ${JSON.stringify(k)}`);
  }
  if (!isPermissionName(v.resource)) throw new InvalidInput('invalid-permission', `${where}.resource: lower-case name or *`);
  if (!isPermissionName(v.action)) throw new InvalidInput('invalid-permission', `${where}.action: lower-case name or *`);
  if (v.negate !== undefined && typeof v.negate !== 'boolean') throw new InvalidInput('invalid-permission', `${where}.negate: boolean`);
  return v.negate ? { resource: v.resource, action: v.action, negate: true } : { resource: v.resource, action: v.action };
}

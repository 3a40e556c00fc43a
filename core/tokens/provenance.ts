import type { Credential } from '../authorizer/principals';
import type { CredentialRoot } from '../rbac/ceiling';
import type { TokenRecord } from '../store/types';

/** Longest createdBy chain followed for a token made before `rootUserId` was recorded. */
export const MAX_PROVENANCE_HOPS = 16;

/**
 * The user behind a token: its owner (personal tokens), the recorded `rootUserId`, or,
 * for tokens made before that field existed, the end of the `createdBy` chain (`token:<id>`
 * links, bounded). A chain that breaks (a link deleted by TTL) or runs too long is
 * `unknown`; a token without `createdBy` was written by an operator outside the API and
 * has no user behind it. Any other `createdBy` is taken as a user id, which errs on the
 * side of "yours" for labels such as `bootstrap-admin`.
 */
export async function tokenRoot(tokens: { getToken(id: string): Promise<TokenRecord | undefined> }, record: TokenRecord): Promise<CredentialRoot> {
  let current: TokenRecord = record;
  for (let hop = 0; hop <= MAX_PROVENANCE_HOPS; hop++) {
    if (current.kind === 'personal') return current.ownerId ? { kind: 'user', userId: current.ownerId } : { kind: 'unknown' };
    if (current.rootUserId !== undefined) return { kind: 'user', userId: current.rootUserId };
    const by = current.createdBy;
    if (by === undefined) return { kind: 'none' };
    if (!by.startsWith('token:')) return { kind: 'user', userId: by };
    const next = await tokens.getToken(by.slice('token:'.length));
    if (!next) return { kind: 'unknown' };
    current = next;
  }
  return { kind: 'unknown' };
}

/** The user behind the credential of an admin call: the user itself (JWT or personal token), else its token's root. */
export async function credentialRoot(tokens: { getToken(id: string): Promise<TokenRecord | undefined> }, caller: Credential): Promise<CredentialRoot> {
  if (caller.principal.kind === 'user') return { kind: 'user', userId: caller.principal.id };
  return caller.token ? tokenRoot(tokens, caller.token) : { kind: 'unknown' };
}

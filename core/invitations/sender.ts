import type { AdminDeps } from '../admin/deps';
import { isGatehouseError } from '../errors';
import { checkAssignment } from '../rbac/assign';
import type { RoleCatalog } from '../rbac/catalog';
import type { CredentialRoot } from '../rbac/ceiling';
import { decide } from '../rbac/decide';
import type { Principal } from '../rbac/types';
import type { InvitationRecord } from '../store/dynamo/invitations';
import { tokenRoot } from '../tokens/provenance';

/** Why the sender can no longer stand behind an invitation (for the audit/log reason). */
export type SenderLoss = 'sender-unknown' | 'sender-token-gone' | 'sender-cannot-invite' | 'sender-role-ceiling';

/**
 * Re-checks, at acceptance time, that whoever sent an invitation could still send it
 * now: a user sender is reloaded (fresh roles, no cache); a token sender (site, org or
 * personal) must still exist, be unrevoked and unexpired, and its principal (for a
 * personal token: its owner's current roles AND its scopes) must still be allowed to
 * create invitations in the org and to assign the invitation's role.
 * Returns undefined when the sender still may, or why not.
 */
export async function senderLoss(deps: Pick<AdminDeps, 'store' | 'callers'>, r: InvitationRecord, catalog: RoleCatalog): Promise<SenderLoss | undefined> {
  let sender: Principal;
  if (r.senderTokenId) {
    // The admin functions' caller resolver reads afresh (no cache): a token revoked a
    // second ago is seen as revoked.
    try {
      sender = (await deps.callers.fromContext({ kind: 'token', tokenId: r.senderTokenId })).principal;
    } catch (err) {
      // Unknown, revoked, expired or corrupt token: it no longer vouches for anything.
      if (isGatehouseError(err) && err.status < 500) return 'sender-token-gone';
      throw err;
    }
  } else if (r.senderId) {
    const user = await deps.store.users.loadUser(r.senderId);
    sender = { id: r.senderId, kind: 'user', siteRoles: user.siteRoles, orgs: user.orgs };
  } else {
    return 'sender-unknown';
  }
  if (!decide(sender, { type: 'invitation', action: 'create', orgId: r.orgId }, catalog).allowed) return 'sender-cannot-invite';
  try {
    checkAssignment(sender, catalog, { scope: 'org', orgId: r.orgId }, { added: [r.role], removed: [] });
  } catch (err) {
    // 403 (ceiling, cannot assign) or 400 (the role was deleted meanwhile).
    if (isGatehouseError(err) && err.status < 500) return 'sender-role-ceiling';
    throw err;
  }
  return undefined;
}

/**
 * The person who sent an invitation: the user sender, or the person behind the sending
 * token (its owner, or the user who made the service token, directly or through tokens).
 * A sending token that no longer exists falls back to the recorded user sender (`senderLoss`
 * refuses such an invitation anyway).
 */
export async function senderRoot(deps: Pick<AdminDeps, 'store'>, r: InvitationRecord): Promise<CredentialRoot> {
  if (r.senderTokenId) {
    const token = await deps.store.tokens.getToken(r.senderTokenId);
    if (token) return tokenRoot(deps.store.tokens, token);
  }
  return r.senderId ? { kind: 'user', userId: r.senderId } : { kind: 'none' };
}

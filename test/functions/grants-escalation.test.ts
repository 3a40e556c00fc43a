import { DeleteItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { OrgAdmin } from '../../core/admin/orgs';
import { PolicyAdmin } from '../../core/admin/policies';
import { createApi, type HttpApiEvent } from '../../core/http/api';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import { InvitationService } from '../../core/invitations/service';
import { keys } from '../../core/store/schema';
import type { Permission } from '../../core/rbac/types';
import { TokenService } from '../../core/tokens/service';
import { httpEvent, tokenContext, userContext, type AuthorizerContext } from '../support/events';
import { testRuntime, TestClock } from '../support/runtime';

const DAY = 86400;
const perm = (scope: string, negate = false): Permission => {
  const [resource, action] = scope.split(':') as [string, string];
  return negate ? { resource, action, negate: true } : { resource, action };
};
const role = (name: string, levels: { site?: string[]; org?: string[]; member?: string[]; neg?: { site?: string[]; org?: string[] } }, orgId?: string) => ({
  name,
  ...(orgId ? { orgId } : {}),
  site: [...(levels.site ?? []).map((s) => perm(s)), ...(levels.neg?.site ?? []).map((s) => perm(s, true))],
  org: [...(levels.org ?? []).map((s) => perm(s)), ...(levels.neg?.org ?? []).map((s) => perm(s, true))],
  member: (levels.member ?? []).map((s) => perm(s)),
  user: [],
});

/**
 * Every admin endpoint (tokens, invitations, orgs, roles, policies) over one fresh table,
 * with a frozen clock and the people of the security review:
 * - sam: site-admin whose `no-policy-write` takes policy:update away;
 * - tom: only a site role granting token:*; rex: a site role that may invite into any org
 *   and grants project:* in orgs he is a member of;
 * - in acme: alice (viewer), bob and ada (org admins), olga (org admin whose `no-deletes`
 *   negates *:delete), nora (org admin without billing), hank (may assign roles, little
 *   else), ed (may edit and delete roles, nothing else), rem (may remove members, little
 *   else), zed (a member without billing).
 */
async function world() {
  const clock = new TestClock();
  const rt = await testRuntime({ ttl: false, clock });
  const now = clock.seconds;
  for (const id of ['acme', 'globex']) await rt.store.orgs.createOrg({ id, name: id, createdAt: now });
  for (const r of [
    role('no-policy-write', { neg: { site: ['policy:update'] } }),
    role('token-admin', { site: ['token:*'] }),
    role('org-recruiter', { site: ['token:create', 'invitation:create', 'org_role:assign', 'org:read', 'role:read', 'role:list', 'membership:read'], org: ['project:*'] }),
    role('no-deletes', { neg: { org: ['*:delete'] } }, 'acme'),
    role('no-billing', { neg: { org: ['billing:*'] } }, 'acme'),
    role('hirer', { org: ['org_role:assign', 'org:read', 'project:read'] }, 'acme'),
    role('role-editor', { org: ['role:update', 'role:delete', 'role:read'] }, 'acme'),
    role('remover', { org: ['org_role:assign', 'membership:delete', 'org:read'] }, 'acme'),
  ]) {
    await rt.store.policy.putRole(r, now);
  }
  await rt.store.users.putSiteRoles('root', ['site-admin'], now);
  await rt.store.users.putSiteRoles('sam', ['site-admin', 'no-policy-write'], now);
  await rt.store.users.putSiteRoles('tom', ['token-admin'], now);
  await rt.store.users.putSiteRoles('rex', ['org-recruiter'], now);
  const acme: Record<string, string[]> = {
    alice: ['org-viewer'],
    bob: ['org-admin'],
    ada: ['org-admin'],
    olga: ['org-admin', 'no-deletes', 'org-viewer'],
    nora: ['org-admin', 'no-billing'],
    hank: ['hirer'],
    ed: ['role-editor'],
    rem: ['remover'],
    zed: ['no-billing'],
  };
  for (const [user, roles] of Object.entries(acme)) await rt.store.users.putMembership('acme', user, roles, now);
  const routes = { ...new TokenService(rt).routes(), ...new InvitationService(rt).routes(), ...new OrgAdmin(rt).routes(), ...new PolicyAdmin(rt).routes() };
  const api = createApi({ name: 'admin', routes, resolveCaller: (c) => rt.callers.fromContext(c), logger: rt.logger });
  const call = async (event: HttpApiEvent) => {
    const res = await api(event);
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
  };
  const send = (method: string, path: string, context: AuthorizerContext, body?: unknown) => call(httpEvent(method, path, { context, ...(body !== undefined ? { body } : {}) }));
  /** A token created through the API; fails the test unless it was created. */
  const mint = async (path: string, context: AuthorizerContext, body: Record<string, unknown>) => {
    const res = await send('POST', path, context, { name: 't', ...body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { id: string; kind: string; ownerId: string | null; scopes: string[] | null; expiresAt: number; createdAt: number; token: string };
  };
  /** A token written straight to the table, as scripts and older versions did. */
  const stored = async (t: { kind: 'site' | 'org' | 'personal'; scopes?: string[]; orgId?: string; ownerId?: string; createdBy?: string; days?: number }) => {
    const g = generateToken();
    await rt.store.tokens.createToken({
      id: g.id, kind: t.kind, name: 'stored', secretHash: hashSecret(g.secret), createdAt: clock.seconds, expiresAt: clock.seconds + (t.days ?? 30) * DAY,
      ...(t.scopes ? { scopes: t.scopes } : {}), ...(t.orgId ? { orgId: t.orgId } : {}), ...(t.ownerId ? { ownerId: t.ownerId } : {}), ...(t.createdBy ? { createdBy: t.createdBy } : {}),
    });
    return { id: g.id, kind: t.kind, ownerId: t.ownerId ?? null };
  };
  const items = async () => (await rt.store.db.client.send(new ScanCommand({ TableName: rt.tableName }))).Items!.map((i) => unmarshall(i));
  const tokenCount = async () => (await items()).filter((i) => i.type === 'token').length;
  return { rt, clock, send, mint, stored, items, tokenCount };
}

/** The context the authorizer passes on for a token. */
function as(t: { id: string; kind: string; ownerId: string | null }): AuthorizerContext {
  return t.kind === 'personal' ? tokenContext(t.id, t.ownerId!, t.ownerId!) : tokenContext(t.id, `token:${t.id}`);
}
const jwt = (user: string, email?: string) => userContext(user, email);

describe('item 2: a token creates tokens only within itself', () => {
  it('a personal token scoped [token:create] mints no unscoped token, and its child cannot make anyone site-admin', async () => {
    const w = await world();
    const minter = await w.mint('/tokens', jwt('root'), { scopes: ['token:create'], expiresInDays: 30 });
    w.clock.advance(DAY);
    const child = await w.mint('/tokens', as(minter), {});
    expect(child.scopes).toEqual(['token:create']);
    // Omitted expiry is capped at the creator's, silently.
    expect(child.expiresAt).toBe(minter.expiresAt);
    const promote = await w.send('PUT', '/users/mallory/site-roles', as(child), { roles: ['site-admin'] });
    expect(promote.status).toBe(403);
    expect(await w.rt.store.users.getSiteRoles('mallory')).toEqual([]);
  });

  it('an explicit expiry beyond the creating token is 403 expiry-escalation and writes nothing', async () => {
    const w = await world();
    const minter = await w.mint('/tokens', jwt('alice'), { scopes: ['token:create'], expiresInDays: 30 });
    w.clock.advance(DAY);
    const before = await w.tokenCount();
    const late = await w.send('POST', '/tokens', as(minter), { name: 'late', expiresInDays: 30 });
    expect(late.status).toBe(403);
    expect(late.body.error.code).toBe('expiry-escalation');
    expect(await w.tokenCount()).toBe(before);
    const ok = await w.mint('/tokens', as(minter), { expiresInDays: 29 });
    expect(ok.expiresAt).toBeLessThanOrEqual(minter.expiresAt);
  });

  it('requested scopes must lie inside the creating token: a wildcard needs a covering wildcard', async () => {
    const w = await world();
    const minter = await w.mint('/tokens', jwt('bob'), { scopes: ['token:create', 'project:read'] });
    for (const scopes of [['project:delete'], ['token:*'], ['*:read'], ['*:*']]) {
      const res = await w.send('POST', '/tokens', as(minter), { name: 'x', scopes });
      expect(res.status, scopes.join()).toBe(403);
      expect(res.body.error.code).toBe('scope-escalation');
    }
    expect((await w.mint('/tokens', as(minter), { scopes: ['project:read'] })).scopes).toEqual(['project:read']);
  });

  it('org and site tokens made by a token get its scopes when none are asked for, and never outlive it', async () => {
    const w = await world();
    const personal = await w.mint('/tokens', jwt('bob'), { scopes: ['token:create', 'project:read'], expiresInDays: 10 });
    const org = await w.mint('/orgs/acme/tokens', as(personal), {});
    expect(org).toMatchObject({ kind: 'org', scopes: ['token:create', 'project:read'], expiresAt: personal.expiresAt });

    const site = await w.mint('/site/tokens', jwt('root'), { scopes: ['token:create', 'invitation:create'], expiresInDays: 10 });
    const child = await w.mint('/site/tokens', as(site), {});
    expect(child).toMatchObject({ kind: 'site', scopes: ['token:create', 'invitation:create'], expiresAt: site.expiresAt });
    const long = await w.send('POST', '/site/tokens', as(site), { name: 'long', expiresInDays: 365 });
    expect(long.status).toBe(403);
    expect(long.body.error.code).toBe('expiry-escalation');
    const inOrg = await w.mint('/orgs/acme/tokens', as(site), { scopes: ['invitation:create'] });
    expect(inOrg.expiresAt).toBeLessThanOrEqual(site.expiresAt);

    const orgToken = await w.mint('/orgs/acme/tokens', jwt('bob'), { expiresInDays: 5 });
    const longer = await w.send('POST', '/orgs/acme/tokens', as(orgToken), { name: 'longer', expiresInDays: 100 });
    expect(longer.status).toBe(403);
    expect(longer.body.error.code).toBe('expiry-escalation');
  });

  it('a wildcard held with a negation carved out of it is not held: no org token beyond its creator', async () => {
    const w = await world();
    // nora is org-admin of acme, but billing is taken from her.
    const unscoped = await w.send('POST', '/orgs/acme/tokens', jwt('nora'), { name: 'all' });
    expect(unscoped.status).toBe(403);
    expect(unscoped.body.error.code).toBe('scope-escalation');
    for (const scopes of [['*:*'], ['billing:*'], ['*:read']]) {
      expect((await w.send('POST', '/orgs/acme/tokens', jwt('nora'), { name: 'x', scopes })).status, scopes.join()).toBe(403);
    }
    expect((await w.mint('/orgs/acme/tokens', jwt('nora'), { scopes: ['project:*'] })).scopes).toEqual(['project:*']);
    // A personal token acts as her AND its scopes, so *:* there is no wider than she is.
    expect((await w.mint('/tokens', jwt('nora'), { scopes: ['*:*'] })).scopes).toEqual(['*:*']);
  });

  it('JWT callers keep today’s behaviour: omitted scopes are all of their rights, 365 days', async () => {
    const w = await world();
    const t = await w.mint('/tokens', jwt('alice'), {});
    expect(t.scopes).toBeNull();
    expect(t.expiresAt - t.createdAt).toBe(365 * DAY);
    const org = await w.mint('/orgs/acme/tokens', jwt('bob'), { expiresInDays: 3650 });
    expect(org.scopes).toBeNull();
    expect(org.expiresAt - org.createdAt).toBe(3650 * DAY);
  });
});

describe('item 3: rotation hands over only what the rotator holds', () => {
  it('a [token:update] token cannot rotate its owner’s unscoped token; it rotates itself, the owner’s JWT rotates both', async () => {
    const w = await world();
    const full = await w.mint('/tokens', jwt('alice'), {});
    const rotator = await w.mint('/tokens', jwt('alice'), { scopes: ['token:update'] });
    const hash = (await w.rt.store.tokens.getToken(full.id))!.secretHash;
    const res = await w.send('POST', `/tokens/${full.id}/rotate`, as(rotator), { graceSeconds: DAY });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('rotation-escalation');
    expect(res.body.token).toBeUndefined();
    expect((await w.rt.store.tokens.getToken(full.id))!.secretHash).toBe(hash);
    expect((await w.send('POST', `/tokens/${rotator.id}/rotate`, as(rotator))).status).toBe(200);
    expect((await w.send('POST', `/tokens/${full.id}/rotate`, jwt('alice'))).status).toBe(200);
    expect((await w.send('POST', `/tokens/${rotator.id}/rotate`, jwt('alice'))).status).toBe(200);
    // A rotator whose scopes cover the rotated token's may rotate it.
    const reader = await w.mint('/tokens', jwt('alice'), { scopes: ['project:read'] });
    const both = await w.mint('/tokens', jwt('alice'), { scopes: ['token:update', 'project:read'] });
    expect((await w.send('POST', `/tokens/${reader.id}/rotate`, as(both))).status).toBe(200);
    expect((await w.send('POST', `/tokens/${full.id}/rotate`, as(both))).body.error.code).toBe('rotation-escalation');
  });

  it('a site role granting token:* rotates neither the bootstrap site token nor someone else’s personal token', async () => {
    const w = await world();
    const boot = await w.stored({ kind: 'site', createdBy: 'bootstrap-admin' });
    const alices = await w.mint('/tokens', jwt('alice'), {});
    for (const t of [boot, alices]) {
      const hash = (await w.rt.store.tokens.getToken(t.id))!.secretHash;
      const res = await w.send('POST', `/tokens/${t.id}/rotate`, jwt('tom'));
      expect(res.status, t.kind).toBe(403);
      expect(res.body.error.code).toBe('rotation-escalation');
      expect((await w.rt.store.tokens.getToken(t.id))!.secretHash).toBe(hash);
    }
    // A site admin holds everything either can do.
    expect((await w.send('POST', `/tokens/${boot.id}/rotate`, jwt('root'))).status).toBe(200);
    expect((await w.send('POST', `/tokens/${alices.id}/rotate`, jwt('root'))).status).toBe(200);
    // tom may still rotate tokens that can do no more than he can.
    const tomsSite = await w.mint('/site/tokens', jwt('tom'), { scopes: ['token:read'] });
    expect((await w.send('POST', `/tokens/${tomsSite.id}/rotate`, jwt('tom'))).status).toBe(200);
  });

  it('a rotating token cannot hand over a token that outlives it', async () => {
    const w = await world();
    const short = await w.mint('/site/tokens', jwt('root'), { expiresInDays: 1 });
    const long = await w.mint('/site/tokens', jwt('root'), { expiresInDays: 30 });
    const res = await w.send('POST', `/tokens/${long.id}/rotate`, as(short));
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('expiry-escalation');
    expect((await w.send('POST', `/tokens/${short.id}/rotate`, as(long))).status).toBe(200);
  });

  it('an org token rotates tokens of its org only within its own scopes', async () => {
    const w = await world();
    const all = await w.mint('/orgs/acme/tokens', jwt('bob'), { expiresInDays: 5 });
    const narrow = await w.mint('/orgs/acme/tokens', jwt('bob'), { scopes: ['token:update'], expiresInDays: 5 });
    expect((await w.send('POST', `/tokens/${all.id}/rotate`, as(narrow))).body.error.code).toBe('rotation-escalation');
    expect((await w.send('POST', `/tokens/${narrow.id}/rotate`, as(all))).status).toBe(200);
  });
});

describe('item 4: nobody lifts their own restrictions', () => {
  it('site: sam cannot drop no-policy-write himself, with a JWT, a personal token, or a site token he made (directly or through a chain)', async () => {
    const w = await world();
    const drop = { roles: ['site-admin'] };
    const viaJwt = await w.send('PUT', '/users/sam/site-roles', jwt('sam'), drop);
    expect(viaJwt.status).toBe(403);
    expect(viaJwt.body.error.code).toBe('self-escalation');
    const personal = await w.mint('/tokens', jwt('sam'), {});
    expect((await w.send('PUT', '/users/sam/site-roles', as(personal), drop)).body.error.code).toBe('self-escalation');
    const site = await w.mint('/site/tokens', jwt('sam'), { scopes: ['site_role:assign', 'token:create'] });
    expect((await w.send('PUT', '/users/sam/site-roles', as(site), drop)).body.error.code).toBe('self-escalation');
    const grandchild = await w.mint('/site/tokens', as(await w.mint('/site/tokens', as(site), {})), {});
    expect((await w.send('PUT', '/users/sam/site-roles', as(grandchild), drop)).body.error.code).toBe('self-escalation');
    // A token from before provenance was recorded: only createdBy links it to sam.
    const old = await w.stored({ kind: 'site', scopes: ['site_role:assign'], createdBy: `token:${site.id}` });
    expect((await w.send('PUT', '/users/sam/site-roles', as(old), drop)).body.error.code).toBe('self-escalation');
    expect(await w.rt.store.users.getSiteRoles('sam')).toEqual(['site-admin', 'no-policy-write']);
    // So the restriction holds.
    expect((await w.send('PUT', '/policies/gate', jwt('sam'), { expression: null })).status).toBe(403);
    // Taking a right away from himself stays possible; someone else may lift it.
    expect((await w.send('PUT', '/users/sam/site-roles', jwt('sam'), { roles: ['no-policy-write'] })).status).toBe(200);
    expect((await w.send('PUT', '/users/sam/site-roles', jwt('root'), { roles: ['site-admin'] })).status).toBe(200);
  });

  it('org: olga cannot drop no-deletes herself, with a JWT or an org token she made, so she cannot delete the org', async () => {
    const w = await world();
    const drop = { roles: ['org-admin', 'org-viewer'] };
    const viaJwt = await w.send('PUT', '/orgs/acme/members/olga', jwt('olga'), drop);
    expect(viaJwt.status).toBe(403);
    expect(viaJwt.body.error.code).toBe('self-escalation');
    const org = await w.mint('/orgs/acme/tokens', jwt('olga'), { scopes: ['org_role:assign', 'org:read'] });
    expect((await w.send('PUT', '/orgs/acme/members/olga', as(org), drop)).body.error.code).toBe('self-escalation');
    expect((await w.rt.store.users.loadUser('olga')).orgs.acme).toEqual(['org-admin', 'no-deletes', 'org-viewer']);
    expect((await w.send('DELETE', '/orgs/acme', jwt('olga'))).status).toBe(403);
    // Dropping a role that only grants is taking away: fine.
    expect((await w.send('PUT', '/orgs/acme/members/olga', jwt('olga'), { roles: ['org-admin', 'no-deletes'] })).status).toBe(200);
    // Another org admin, who holds *:delete, may lift it.
    expect((await w.send('PUT', '/orgs/acme/members/olga', jwt('ada'), { roles: ['org-admin'] })).status).toBe(200);
  });

  it('leaving an org, or being removed from it, takes everything away, negations included: allowed', async () => {
    const w = await world();
    expect((await w.send('DELETE', '/orgs/acme/members/olga', jwt('olga'))).status).toBe(204);
    expect((await w.rt.store.users.loadUser('olga')).orgs.acme).toBeUndefined();
    // Through a token of her own: the membership goes, so no negation is left to lift.
    const personal = await w.mint('/tokens', jwt('nora'), {});
    expect((await w.send('DELETE', '/orgs/acme/members/nora', as(personal))).status).toBe(204);
    // rem holds no billing, but removing zed lifts nothing.
    expect((await w.send('DELETE', '/orgs/acme/members/zed', jwt('rem'))).status).toBe(204);
  });

  it('a token is tied to its maker through its recorded root even when the chain is gone; an untraceable one may only take away', async () => {
    const w = await world();
    const site = await w.mint('/site/tokens', jwt('sam'), { scopes: ['site_role:assign', 'token:create'] });
    const child = await w.mint('/site/tokens', as(site), {});
    await w.rt.store.db.client.send(new DeleteItemCommand({ TableName: w.rt.tableName, Key: marshall({ pk: keys.token(site.id), sk: keys.tokenSk() }) }));
    expect((await w.send('PUT', '/users/sam/site-roles', as(child), { roles: ['site-admin'] })).body.error.code).toBe('self-escalation');
    // A token from before roots were recorded whose maker is gone: nobody can tell whose it is.
    const orphan = await w.stored({ kind: 'site', scopes: ['site_role:assign', 'org_role:assign', 'org:read', 'role:read', 'role:list', 'membership:read', 'project:read'], createdBy: `token:${site.id}` });
    const add = await w.send('PUT', '/orgs/acme/members/newcomer', as(orphan), { roles: ['org-member'] });
    expect(add.status).toBe(403);
    expect(add.body.error.code).toBe('token-provenance-unknown');
    expect((await w.send('PUT', '/users/sam/site-roles', as(orphan), { roles: ['site-admin'] })).body.error.code).toBe('token-provenance-unknown');
    // Taking a role that only grants away stays possible.
    expect((await w.send('PUT', '/orgs/acme/members/hank', as(orphan), { roles: [] })).status).toBe(200);
    // A token written by an operator outside the API has nobody behind it.
    const operator = await w.stored({ kind: 'site' });
    expect((await w.send('PUT', '/users/newbie/site-roles', as(operator), { roles: ['site-viewer'] })).status).toBe(200);
  });

  it('lifting someone else’s negation hands out what it took: only someone holding that may', async () => {
    const w = await world();
    const res = await w.send('PUT', '/orgs/acme/members/olga', jwt('hank'), { roles: ['org-admin', 'org-viewer'] });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('role-ceiling');
    expect((await w.rt.store.users.loadUser('olga')).orgs.acme).toEqual(['org-admin', 'no-deletes', 'org-viewer']);
    // hank may still add a role that only takes away.
    expect((await w.send('PUT', '/orgs/acme/members/alice', jwt('hank'), { roles: ['org-viewer', 'no-deletes'] })).status).toBe(200);
  });
});

describe('siblings: the check and the write see the same roles', () => {
  it('site roles changed between the check and the write: 409, the restriction added meanwhile stays', async () => {
    const w = await world();
    await w.rt.store.users.putSiteRoles('sam', ['site-admin'], w.clock.seconds);
    const client = w.rt.store.db.client;
    let profileReads = 0;
    let restricting = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: Record<string, { S?: string }> };
        if (context.commandName === 'GetItemCommand' && input.Key?.pk?.S === 'USER#sam' && input.Key?.sk?.S === 'PROFILE' && !restricting) {
          // Between the handler's read (the first) and the store's own read before writing,
          // root restricts sam.
          if (++profileReads === 2) {
            restricting = true;
            await w.rt.store.users.putSiteRoles('sam', ['site-admin', 'no-policy-write'], w.clock.seconds);
            restricting = false;
          }
        }
        return next(args);
      },
      { step: 'initialize', name: 'restrict-meanwhile' },
    );
    try {
      const res = await w.send('PUT', '/users/sam/site-roles', jwt('sam'), { roles: ['site-admin'] });
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('site-roles-changed');
    } finally {
      client.middlewareStack.remove('restrict-meanwhile');
    }
    expect(profileReads).toBeGreaterThanOrEqual(2);
    expect(await w.rt.store.users.getSiteRoles('sam')).toEqual(['site-admin', 'no-policy-write']);
  });
});

describe('siblings: redefining or deleting a role that carries a negation', () => {
  it('a holder can neither redefine nor delete the role that restricts them', async () => {
    const w = await world();
    for (const [method, path, who, body] of [
      ['PUT', '/roles/no-policy-write', 'sam', { site: [] }],
      ['PUT', '/roles/no-policy-write', 'sam', { site: [{ resource: 'policy', action: 'read', negate: true }] }],
      ['DELETE', '/roles/no-policy-write', 'sam', undefined],
      ['PUT', '/orgs/acme/roles/no-deletes', 'olga', { org: [] }],
      ['PUT', '/orgs/acme/roles/no-billing', 'nora', { org: [] }],
      ['DELETE', '/orgs/acme/roles/no-billing', 'nora', undefined],
    ] as const) {
      const res = await w.send(method, path, jwt(who), body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error.code).toBe('self-escalation');
    }
    const site = await w.mint('/site/tokens', jwt('sam'), { scopes: ['role:update', 'role:delete'] });
    expect((await w.send('DELETE', '/roles/no-policy-write', as(site))).body.error.code).toBe('self-escalation');
    const roles = (await w.rt.store.loadPolicy()).roles;
    expect(roles.find((r) => r.name === 'no-policy-write')?.site).toEqual([{ resource: 'policy', action: 'update', negate: true }]);
    expect(roles.find((r) => r.name === 'no-deletes')?.org).toEqual([{ resource: '*', action: 'delete', negate: true }]);
    expect(roles.find((r) => r.name === 'no-billing')?.org).toEqual([{ resource: 'billing', action: '*', negate: true }]);
  });

  it('lifting a negation others hold needs the negated right; adding negations stays free', async () => {
    const w = await world();
    // ed may edit and delete roles in acme, but holds no *:delete.
    const lift = await w.send('PUT', '/orgs/acme/roles/no-deletes', jwt('ed'), { org: [] });
    expect(lift.status).toBe(403);
    expect(lift.body.error.code).toBe('role-ceiling');
    expect((await w.send('DELETE', '/orgs/acme/roles/no-deletes', jwt('ed'))).body.error.code).toBe('role-ceiling');
    expect((await w.send('PUT', '/orgs/acme/roles/no-deploys', jwt('ed'), { org: [{ resource: 'deploy', action: '*', negate: true }] })).status).toBe(201);
    expect((await w.send('PUT', '/orgs/acme/roles/no-deploys', jwt('ed'), { displayName: 'No deploys', org: [{ resource: 'deploy', action: '*', negate: true }, { resource: 'deploy', action: 'read', negate: true }] })).status).toBe(200);
    // ada holds *:delete in acme; root holds policy:update: they may.
    expect((await w.send('PUT', '/orgs/acme/roles/no-deletes', jwt('ada'), { org: [] })).status).toBe(200);
    expect((await w.send('DELETE', '/roles/no-policy-write', jwt('root'))).status).toBe(204);
  });
});

describe('siblings: a token one made widens no role one holds', () => {
  it('a stale token of a holder cannot add to the holder’s role what the holder lacks; an untraceable token widens no existing role', async () => {
    const w = await world();
    await w.rt.store.policy.putRole(role('stamp', { site: ['stamp:read'] }), w.clock.seconds);
    await w.rt.store.users.putSiteRoles('sam', ['site-admin', 'no-policy-write', 'stamp'], w.clock.seconds);
    // Made for sam before he was restricted (older tokens name their maker in createdBy only).
    const stale = await w.stored({ kind: 'site', scopes: ['role:update', 'policy:update', 'stamp:read'], createdBy: 'sam' });
    const widen = await w.send('PUT', '/roles/stamp', as(stale), { site: [{ resource: 'stamp', action: 'read' }, { resource: 'policy', action: 'update' }] });
    expect(widen.status).toBe(403);
    expect(widen.body.error.code).toBe('self-escalation');
    expect((await w.rt.store.loadPolicy()).roles.find((r) => r.name === 'stamp')?.site).toEqual([{ resource: 'stamp', action: 'read' }]);
    // Narrowing it only takes away.
    expect((await w.send('PUT', '/roles/stamp', as(stale), { site: [] })).status).toBe(200);

    const orphan = await w.stored({ kind: 'site', scopes: ['role:update', 'org_role:assign', 'org:read', 'project:read', 'deploy:read'], createdBy: 'token:0000000000000000' });
    const grow = await w.send('PUT', '/orgs/acme/roles/hirer', as(orphan), { org: [{ resource: 'org_role', action: 'assign' }, { resource: 'org', action: 'read' }, { resource: 'project', action: 'read' }, { resource: 'deploy', action: 'read' }] });
    expect(grow.status).toBe(403);
    expect(grow.body.error.code).toBe('token-provenance-unknown');
    // A new role has no holders to widen.
    expect((await w.send('PUT', '/orgs/acme/roles/deploy-readers', as(orphan), { org: [{ resource: 'deploy', action: 'read' }] })).status).toBe(201);
  });
});

describe('siblings: invitations', () => {
  it('an invitation cannot carry a wildcard whose negation the sender is under', async () => {
    const w = await world();
    const res = await w.send('POST', '/orgs/acme/invitations', jwt('nora'), { email: 'x@example.com', role: 'org-admin' });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('role-ceiling');
    expect((await w.send('POST', '/orgs/acme/invitations', jwt('ada'), { email: 'x@example.com', role: 'org-admin' })).status).toBe(201);
  });

  it('nobody invites themselves upward: refused when sent, and when accepted', async () => {
    const w = await world();
    const own = await w.send('POST', '/orgs/globex/invitations', jwt('rex', 'rex@example.com'), { email: 'REX@example.com', role: 'org-member' });
    expect(own.status).toBe(403);
    expect(own.body.error.code).toBe('self-escalation');
    // Sent without his email known to the function, it is refused when he accepts it.
    const inv = await w.send('POST', '/orgs/globex/invitations', jwt('rex'), { email: 'rex@example.com', role: 'org-member' });
    expect(inv.status).toBe(201);
    const accept = await w.send('POST', `/invitations/${inv.body.id}/accept`, jwt('rex', 'rex@example.com'));
    expect(accept.status).toBe(403);
    expect(accept.body.error.code).toBe('self-escalation');
    // The same through a site token he made.
    const site = await w.mint('/site/tokens', jwt('rex'), { scopes: ['invitation:create', 'org_role:assign', 'org:read', 'role:read', 'role:list', 'membership:read'] });
    const viaToken = await w.send('POST', '/orgs/acme/invitations', as(site), { email: 'rex@example.com', role: 'org-member' });
    expect(viaToken.status).toBe(201);
    expect((await w.send('POST', `/invitations/${viaToken.body.id}/accept`, jwt('rex', 'rex@example.com'))).body.error.code).toBe('self-escalation');
    expect((await w.rt.store.users.loadUser('rex')).orgs).toEqual({});
    // Anyone else accepts his invitations as before.
    const other = await w.send('POST', '/orgs/globex/invitations', jwt('rex'), { email: 'pat@example.com', role: 'org-member' });
    expect((await w.send('POST', `/invitations/${other.body.id}/accept`, jwt('pat', 'pat@example.com'))).status).toBe(200);
    // An invitation from a token nobody can trace to its maker could be its maker's own: refused.
    const orphan = await w.stored({ kind: 'site', scopes: ['invitation:create', 'org_role:assign', 'org:read', 'role:read', 'role:list', 'membership:read'], createdBy: 'token:0000000000000000' });
    const untraced = await w.send('POST', '/orgs/globex/invitations', as(orphan), { email: 'kit@example.com', role: 'org-member' });
    expect(untraced.status).toBe(201);
    expect((await w.send('POST', `/invitations/${untraced.body.id}/accept`, jwt('kit', 'kit@example.com'))).body.error.code).toBe('token-provenance-unknown');
  });
});

describe('found fine, pinned: token listing and revocation by scoped tokens', () => {
  it('a token without token:list or token:delete neither lists nor revokes; with token:delete it revokes (taking away)', async () => {
    const w = await world();
    const full = await w.mint('/tokens', jwt('alice'), {});
    const reader = await w.mint('/tokens', jwt('alice'), { scopes: ['project:read'] });
    expect((await w.send('GET', '/tokens', as(reader))).status).toBe(403);
    expect((await w.send('DELETE', `/tokens/${full.id}`, as(reader))).status).toBe(404);
    const revoker = await w.mint('/tokens', jwt('alice'), { scopes: ['token:delete'] });
    expect((await w.send('DELETE', `/tokens/${full.id}`, as(revoker))).status).toBe(204);
    // An org token sees only its org's tokens.
    const org = await w.mint('/orgs/acme/tokens', jwt('bob'), { scopes: ['token:list', 'token:read'] });
    expect((await w.send('GET', '/orgs/acme/tokens', as(org))).status).toBe(200);
    expect((await w.send('GET', '/orgs/globex/tokens', as(org))).status).toBe(404);
    expect((await w.send('GET', '/site/tokens', as(org))).status).toBe(403);
    expect((await w.send('GET', `/tokens/${full.id}`, as(org))).status).toBe(404);
  });
});

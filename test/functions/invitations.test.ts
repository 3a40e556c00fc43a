import { ScanCommand, TransactionCanceledException, TransactWriteItemsCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApi, type HttpApiEvent } from '../../core/http/api';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import { InvitationService, newInvitationId } from '../../core/invitations/service';
import { InvitationRepo } from '../../core/store/dynamo/invitations';
import { httpEvent, tokenContext, userContext } from '../support/events';
import { testRuntime } from '../support/runtime';

async function setup() {
  const rt = await testRuntime({ ttl: false });
  const now = rt.clock.seconds;
  for (const id of ['acme', 'globex']) await rt.store.orgs.createOrg({ id, name: id, createdAt: now });
  await rt.store.users.putSiteRoles('root', ['site-admin'], now);
  await rt.store.users.putMembership('acme', 'ada', ['org-admin'], now);
  await rt.store.users.putMembership('acme', 'mo', ['org-member'], now);
  await rt.store.users.putMembership('acme', 'vic', ['org-viewer'], now);
  await rt.store.users.putMembership('acme', 'existing', ['org-member'], now);
  // A custom role that lets its holder invite, but grants little else.
  await rt.store.policy.putRole({ name: 'recruiter', orgId: 'acme', site: [], org: [{ resource: 'invitation', action: '*' }, { resource: 'org_role', action: 'assign' }], member: [], user: [] }, now);
  await rt.store.policy.putRole({ name: 'deployer', orgId: 'acme', site: [], org: [{ resource: 'deployment', action: '*' }], member: [], user: [] }, now);
  await rt.store.users.putMembership('acme', 'rita', ['recruiter'], now);
  const api = createApi({ name: 'invitations', routes: new InvitationService(rt).routes(), resolveCaller: (c) => rt.callers.fromContext(c), logger: rt.logger });
  const call = async (event: HttpApiEvent) => {
    const res = await api(event);
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
  };
  const siteToken = async (scopes?: string[]) => {
    const t = generateToken();
    await rt.store.tokens.createToken({ id: t.id, kind: 'site', name: 'inviter', ...(scopes ? { scopes } : {}), secretHash: hashSecret(t.secret), createdAt: rt.clock.seconds, expiresAt: rt.clock.seconds + 86400 });
    return t.id;
  };
  const items = async () => (await rt.store.db.client.send(new ScanCommand({ TableName: rt.tableName }))).Items!.map((i) => unmarshall(i));
  return { rt, call, siteToken, items };
}

type S = Awaited<ReturnType<typeof setup>>;
const invite = (s: S, ctx: Record<string, string | number | boolean>, body: unknown, org = 'acme') => s.call(httpEvent('POST', `/orgs/${org}/invitations`, { body, context: ctx }));

describe('creating invitations', () => {
  let s: S;
  beforeAll(async () => {
    s = await setup();
  });

  it('an org admin invites into their org: 201, email normalised, unguessable id', async () => {
    const res = await invite(s, userContext('ada'), { email: '  New.Person@Example.COM ', role: 'org-member' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ orgId: 'acme', email: 'new.person@example.com', role: 'org-member', status: 'pending', senderId: 'ada' });
    expect(res.body.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(res.body.expiresAt - res.body.createdAt).toBe(7 * 86400);
  });

  it('a pending invitation for the same email and org is a 409, whatever the case', async () => {
    await invite(s, userContext('ada'), { email: 'dup@example.com', role: 'org-member' });
    const again = await invite(s, userContext('ada'), { email: 'DUP@example.com ', role: 'org-viewer' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('invitation-pending');
  });

  it.each([
    ['bad email', { email: 'not-an-email', role: 'org-member' }, 'invalid-field'],
    ['email with spaces inside', { email: 'a b@example.com', role: 'org-member' }, 'invalid-field'],
    ['unknown role', { email: 'x@example.com', role: 'wizard' }, 'unknown-role'],
    ['site role in an org', { email: 'x@example.com', role: 'site-admin' }, 'unknown-role'],
    ['another org’s custom role', { email: 'x@example.com', role: 'globex-only' }, 'unknown-role'],
    ['expiry 0', { email: 'x@example.com', role: 'org-member', expiresInDays: 0 }, 'invalid-field'],
    ['expiry 31', { email: 'x@example.com', role: 'org-member', expiresInDays: 31 }, 'invalid-field'],
    ['expiry as string', { email: 'x@example.com', role: 'org-member', expiresInDays: '7' }, 'invalid-field'],
    ['unknown field', { email: 'x@example.com', role: 'org-member', orgId: 'globex' }, 'unknown-field'],
  ])('400 for %s, nothing written', async (_n, body, code) => {
    const count = async () => (await s.items()).filter((i) => i.type !== 'audit').length;
    const before = await count();
    const res = await invite(s, userContext('ada'), body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(code);
    expect(await count()).toBe(before);
  });

  it('nothing but an audit record is written on a 4xx', async () => {
    const count = async () => (await s.items()).filter((i) => i.type !== 'audit').length;
    const before = await count();
    await invite(s, userContext('ada'), { email: 'bad', role: 'org-member' });
    await invite(s, userContext('mo'), { email: 'x@example.com', role: 'org-member' });
    expect(await count()).toBe(before);
  });

  it('who may invite: members and viewers get 403, outsiders and unknown orgs 404', async () => {
    expect((await invite(s, userContext('mo'), { email: 'a@example.com', role: 'org-member' })).status).toBe(403);
    expect((await invite(s, userContext('vic'), { email: 'a@example.com', role: 'org-member' })).status).toBe(403);
    expect((await invite(s, userContext('stranger'), { email: 'a@example.com', role: 'org-member' })).status).toBe(404);
    expect((await invite(s, userContext('ada'), { email: 'a@example.com', role: 'org-member' }, 'globex')).status).toBe(404);
    expect((await invite(s, userContext('root'), { email: 'a@example.com', role: 'org-member' }, 'nope')).status).toBe(404);
    expect((await invite(s, userContext('root'), { email: 'a@example.com', role: 'org-member' }, '..%2Facme')).status).toBe(404);
  });

  it('role ceiling: nobody invites with a role they could not assign', async () => {
    // rita may invite, but holds none of org-admin's permissions.
    const asAdmin = await invite(s, userContext('rita'), { email: 'r1@example.com', role: 'org-admin' });
    expect(asAdmin.status).toBe(403);
    expect(asAdmin.body.error.code).toBe('role-ceiling');
    const asDeployer = await invite(s, userContext('rita'), { email: 'r2@example.com', role: 'deployer' });
    expect(asDeployer.status).toBe(403);
    // ...but may invite with the floor role, whose permissions she holds through it.
    expect((await invite(s, userContext('rita'), { email: 'r3@example.com', role: 'org-member' })).status).toBe(201);
    // An org admin may invite with a custom role of their org.
    expect((await invite(s, userContext('ada'), { email: 'r4@example.com', role: 'deployer' })).status).toBe(201);
  });

  it('a site admin and a site token invite into any org; a token invites with a null sender', async () => {
    expect((await invite(s, userContext('root'), { email: 'g1@example.com', role: 'org-admin' }, 'globex')).status).toBe(201);
    const tokenId = await s.siteToken();
    const res = await invite(s, tokenContext(tokenId, `token:${tokenId}`), { email: 'g2@example.com', role: 'org-admin' }, 'globex');
    expect(res.status).toBe(201);
    expect(res.body.senderId).toBeNull();
    const narrow = await s.siteToken(['invitation:create']);
    const denied = await invite(s, tokenContext(narrow, `token:${narrow}`), { email: 'g3@example.com', role: 'org-admin' }, 'globex');
    expect(denied.status).toBe(403);
  });

  it('lists an org’s invitations with a status filter, for those allowed', async () => {
    const all = await s.call(httpEvent('GET', '/orgs/acme/invitations', { context: userContext('ada') }));
    expect(all.status).toBe(200);
    expect(all.body.items.length).toBeGreaterThan(2);
    const pending = await s.call(httpEvent('GET', '/orgs/acme/invitations', { context: userContext('ada'), query: { status: 'pending' } }));
    expect(pending.body.items.every((i: { status: string }) => i.status === 'pending')).toBe(true);
    expect((await s.call(httpEvent('GET', '/orgs/acme/invitations', { context: userContext('vic') }))).status).toBe(200);
    expect((await s.call(httpEvent('GET', '/orgs/acme/invitations', { context: userContext('stranger') }))).status).toBe(404);
    expect((await s.call(httpEvent('GET', '/orgs/acme/invitations', { context: userContext('ada'), query: { status: 'weird' } }))).status).toBe(400);
  });
});

describe('accepting, declining, revoking', () => {
  let s: S;
  beforeAll(async () => {
    s = await setup();
  });
  const accept = (id: string, ctx: Record<string, string | number | boolean>) => s.call(httpEvent('POST', `/invitations/${id}/accept`, { context: ctx }));

  it('the invitee sees it under GET /invitations and accepts with the stored role', async () => {
    const inv = (await invite(s, userContext('ada'), { email: 'Zoe@Example.com', role: 'org-viewer' })).body;
    const mine = await s.call(httpEvent('GET', '/invitations', { context: userContext('zoe', 'ZOE@example.com') }));
    expect(mine.body.items.map((i: { id: string }) => i.id)).toContain(inv.id);
    expect((await s.call(httpEvent('GET', '/invitations', { context: userContext('zoe') }))).body.items).toEqual([]);
    const res = await accept(inv.id, userContext('zoe', 'zoe@EXAMPLE.com'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'accepted', membership: { orgId: 'acme', userId: 'zoe', roles: ['org-viewer'] } });
    expect((await s.rt.store.users.loadUser('zoe')).orgs).toEqual({ acme: ['org-viewer'] });
    expect((await accept(inv.id, userContext('zoe', 'zoe@example.com'))).status).toBe(409);
  });

  it('wrong person 403, unverified email 403, service token 403, unknown id 404', async () => {
    const inv = (await invite(s, userContext('ada'), { email: 'kim@example.com', role: 'org-member' })).body;
    expect((await accept(inv.id, userContext('eve', 'eve@example.com'))).status).toBe(403);
    expect((await accept(inv.id, userContext('kim'))).status).toBe(403);
    const tokenId = await s.siteToken();
    expect((await accept(inv.id, tokenContext(tokenId, `token:${tokenId}`))).status).toBe(403);
    expect((await accept('A'.repeat(22), userContext('kim', 'kim@example.com'))).status).toBe(404);
    expect((await accept('../../x', userContext('kim', 'kim@example.com'))).status).toBe(404);
  });

  it('an existing member gets 409 and keeps their roles', async () => {
    const inv = (await invite(s, userContext('ada'), { email: 'ex@example.com', role: 'org-admin' })).body;
    const res = await accept(inv.id, userContext('existing', 'ex@example.com'));
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('already-member');
    expect((await s.rt.store.users.loadUser('existing')).orgs.acme).toEqual(['org-member']);
  });

  it('10 concurrent accepts yield exactly one membership', async () => {
    const inv = (await invite(s, userContext('ada'), { email: 'race@example.com', role: 'org-member' })).body;
    const results = await Promise.all(Array.from({ length: 10 }, () => accept(inv.id, userContext('racer', 'race@example.com'))));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(9);
    const memberships = (await s.items()).filter((i) => i.type === 'membership' && i.userId === 'racer');
    expect(memberships).toHaveLength(1);
  });

  it('expiry edges: expiresAt = now is expired (410) while the item still exists; now+1 works', async () => {
    const a = (await invite(s, userContext('ada'), { email: 'late@example.com', role: 'org-member', expiresInDays: 1 })).body;
    const b = (await invite(s, userContext('ada'), { email: 'early@example.com', role: 'org-member', expiresInDays: 1 })).body;
    s.rt.clock.advance(86400 - 1);
    expect((await accept(b.id, userContext('early', 'early@example.com'))).status).toBe(200);
    s.rt.clock.advance(1);
    const res = await accept(a.id, userContext('late', 'late@example.com'));
    expect(res.status).toBe(410);
    const listed = await s.call(httpEvent('GET', '/orgs/acme/invitations', { context: userContext('ada'), query: { status: 'expired' } }));
    expect(listed.body.items.map((i: { id: string }) => i.id)).toContain(a.id);
    // An expired invitation no longer blocks a new one for the same email.
    expect((await invite(s, userContext('ada'), { email: 'late@example.com', role: 'org-member' })).status).toBe(201);
  });

  it('revoke: 204 for a pending one, then 404 for the invitee and 409 for a second revoke', async () => {
    const inv = (await invite(s, userContext('ada'), { email: 'rev@example.com', role: 'org-member' })).body;
    expect((await s.call(httpEvent('DELETE', `/orgs/acme/invitations/${inv.id}`, { context: userContext('mo') }))).status).toBe(403);
    expect((await s.call(httpEvent('DELETE', `/orgs/globex/invitations/${inv.id}`, { context: userContext('root') }))).status).toBe(404);
    expect((await s.call(httpEvent('DELETE', `/orgs/acme/invitations/${inv.id}`, { context: userContext('ada') }))).status).toBe(204);
    expect((await s.call(httpEvent('DELETE', `/orgs/acme/invitations/${inv.id}`, { context: userContext('ada') }))).status).toBe(409);
    expect((await accept(inv.id, userContext('rev', 'rev@example.com'))).status).toBe(404);
    // The guard is released: the same email can be invited again.
    expect((await invite(s, userContext('ada'), { email: 'rev@example.com', role: 'org-member' })).status).toBe(201);
  });

  it('decline: 204 once, only by the invitee', async () => {
    const inv = (await invite(s, userContext('ada'), { email: 'dec@example.com', role: 'org-member' })).body;
    expect((await s.call(httpEvent('POST', `/invitations/${inv.id}/decline`, { context: userContext('x', 'other@example.com') }))).status).toBe(403);
    expect((await s.call(httpEvent('POST', `/invitations/${inv.id}/decline`, { context: userContext('dec', 'dec@example.com') }))).status).toBe(204);
    expect((await s.call(httpEvent('POST', `/invitations/${inv.id}/decline`, { context: userContext('dec', 'dec@example.com') }))).status).toBe(409);
    expect((await accept(inv.id, userContext('dec', 'dec@example.com'))).status).toBe(409);
  });

  it('a sender who lost the right to grant the role makes acceptance fail with 403', async () => {
    await s.rt.store.users.putMembership('acme', 'ada2', ['org-admin'], s.rt.clock.seconds);
    const inv = (await invite(s, userContext('ada2'), { email: 'lost@example.com', role: 'org-admin' })).body;
    await s.rt.store.users.putMembership('acme', 'ada2', ['org-member'], s.rt.clock.seconds);
    const res = await accept(inv.id, userContext('lost', 'lost@example.com'));
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('sender-lost-right');
  });

  it('a revoked inviting token makes acceptance fail with 403', async () => {
    const tokenId = await s.siteToken();
    const inv = (await invite(s, tokenContext(tokenId, `token:${tokenId}`), { email: 'tok@example.com', role: 'org-member' })).body;
    await s.rt.store.tokens.revokeToken(tokenId, s.rt.clock.seconds, 'root');
    expect((await accept(inv.id, userContext('tok', 'tok@example.com'))).status).toBe(403);
  });

  it('every state change is audited, denied attempts included; events are logged', async () => {
    const audit = (await s.items()).filter((i) => i.type === 'audit');
    const actions = new Set(audit.map((a) => `${a.action}:${a.outcome}`));
    for (const a of ['invitation.create:allowed', 'invitation.accept:allowed', 'invitation.accept:denied', 'invitation.revoke:allowed', 'invitation.revoke:denied', 'invitation.decline:allowed']) {
      expect(actions.has(a), a).toBe(true);
    }
    const events = s.rt.logs.map((l) => JSON.parse(l).message);
    for (const e of ['invitation.created', 'invitation.accepted', 'invitation.revoked', 'invitation.declined']) expect(events).toContain(e);
  });
});

describe('edges: tokens, ceilings, expiry, races, pagination, no writes on 4xx', () => {
  let s: S;
  type Ctx = Record<string, string | number | boolean>;
  const accept = (id: string, ctx: Ctx, body?: unknown) => s.call(httpEvent('POST', `/invitations/${id}/accept`, { context: ctx, ...(body !== undefined ? { body } : {}) }));
  const decline = (id: string, ctx: Ctx) => s.call(httpEvent('POST', `/invitations/${id}/decline`, { context: ctx }));
  const revoke = (id: string, ctx: Ctx, org = 'acme') => s.call(httpEvent('DELETE', `/orgs/${org}/invitations/${id}`, { context: ctx }));
  const listOrg = (ctx: Ctx, query?: Record<string, string>, org = 'acme') => s.call(httpEvent('GET', `/orgs/${org}/invitations`, { context: ctx, ...(query ? { query } : {}) }));
  const listMine = (ctx: Ctx, query?: Record<string, string>) => s.call(httpEvent('GET', '/invitations', { context: ctx, ...(query ? { query } : {}) }));
  /** A stored token of any kind; returns the context the authorizer would pass for it. */
  const secrets: string[] = [];
  const token = async (t: { kind: 'site' | 'org' | 'personal'; scopes?: string[]; orgId?: string; ownerId?: string; ttl?: number }) => {
    const g = generateToken();
    secrets.push(g.secret);
    await s.rt.store.tokens.createToken({
      id: g.id,
      kind: t.kind,
      name: 't',
      ...(t.scopes ? { scopes: t.scopes } : {}),
      ...(t.orgId ? { orgId: t.orgId } : {}),
      ...(t.ownerId ? { ownerId: t.ownerId } : {}),
      secretHash: hashSecret(g.secret),
      createdAt: s.rt.clock.seconds,
      expiresAt: s.rt.clock.seconds + (t.ttl ?? 30 * 86400),
    });
    return { id: g.id, ctx: t.kind === 'personal' ? tokenContext(g.id, t.ownerId!, t.ownerId) : tokenContext(g.id, `token:${g.id}`) };
  };
  /** Every item but audit records, for "nothing was written" checks. */
  const state = async () => JSON.stringify((await s.items()).filter((i) => i.type !== 'audit').sort((a, b) => `${a.pk}|${a.sk}`.localeCompare(`${b.pk}|${b.sk}`)));

  beforeAll(async () => {
    s = await setup();
    const now = s.rt.clock.seconds;
    // A role that takes billing away, and one that grants it.
    await s.rt.store.policy.putRole({ name: 'no-billing', orgId: 'acme', site: [], org: [{ resource: 'billing', action: '*', negate: true }], member: [], user: [] }, now);
    await s.rt.store.policy.putRole({ name: 'billing-manager', orgId: 'acme', site: [], org: [{ resource: 'billing', action: '*' }], member: [], user: [] }, now);
    await s.rt.store.users.putMembership('acme', 'nora', ['org-admin', 'no-billing'], now);
  });

  it('email case and whitespace variants all reach the same invitation', async () => {
    const inv = await invite(s, userContext('ada'), { email: '\t Case.Mix@Example.COM  ', role: 'org-member' });
    expect(inv.status).toBe(201);
    expect(inv.body.email).toBe('case.mix@example.com');
    for (const variant of ['case.mix@example.com', 'CASE.MIX@EXAMPLE.COM', ' Case.Mix@example.com ']) {
      expect((await invite(s, userContext('ada'), { email: variant, role: 'org-viewer' })).status, variant).toBe(409);
    }
    expect((await listMine(userContext('cm', 'CASE.mix@example.COM'))).body.items.map((i: { id: string }) => i.id)).toEqual([inv.body.id]);
    expect((await accept(inv.body.id, userContext('cm', ' Case.MIX@Example.com '))).status).toBe(200);
    expect((await s.rt.store.users.loadUser('cm')).orgs).toEqual({ acme: ['org-member'] });
    // A different address is a different invitee, even one a dot apart.
    expect((await invite(s, userContext('ada'), { email: 'casemix@example.com', role: 'org-member' })).status).toBe(201);
  });

  it('the membership gets the stored role and org, never ones from the request body', async () => {
    const inv = (await invite(s, userContext('ada'), { email: 'body@example.com', role: 'org-viewer' })).body;
    expect((await accept(inv.id, userContext('bodyu', 'body@example.com'), { role: 'org-admin', orgId: 'globex' })).status).toBe(200);
    expect((await s.rt.store.users.loadUser('bodyu')).orgs).toEqual({ acme: ['org-viewer'] });
  });

  it('role ceiling: an org admin cannot invite with a custom role granting what a negation takes from them', async () => {
    const res = await invite(s, userContext('nora'), { email: 'bm@example.com', role: 'billing-manager' });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('role-ceiling');
    expect((await invite(s, userContext('nora'), { email: 'bm@example.com', role: 'deployer' })).status).toBe(201);
    // ada (plain org-admin) holds billing:* and may.
    expect((await invite(s, userContext('ada'), { email: 'bm2@example.com', role: 'billing-manager' })).status).toBe(201);
  });

  it('role ceiling: org-members cannot invite at all, recruiters not above their rights', async () => {
    expect((await invite(s, userContext('mo'), { email: 'm@example.com', role: 'org-member' })).body.error.code).toBe('cannot-invite');
    const res = await invite(s, userContext('rita'), { email: 'm@example.com', role: 'org-admin' });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('role-ceiling');
    // Her own role grants invitation:* and org_role:assign, which she holds: she may hand it on.
    expect((await invite(s, userContext('rita'), { email: 'm@example.com', role: 'recruiter' })).status).toBe(201);
  });

  it('a site token with exactly the needed scopes invites into an org it is not a member of, with a null sender', async () => {
    const t = await token({ kind: 'site', scopes: ['invitation:create', 'org_role:assign', 'org:read', 'role:list', 'role:read', 'membership:read'] });
    const res = await invite(s, t.ctx, { email: 'svc@example.com', role: 'org-member' }, 'globex');
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ orgId: 'globex', senderId: null, status: 'pending' });
    const stored = (await s.items()).find((i) => i.pk === `INVITE#${res.body.id}`)!;
    expect(stored).toMatchObject({ type: 'invitation', senderId: null, senderTokenId: t.id, gsi1pk: 'ORGINVITES#globex', gsi2pk: 'EMAILINVITES#svc@example.com' });
    expect(stored.gsi1sk).toBe(`${String(stored.createdAt).padStart(12, '0')}#${res.body.id}`);
    expect(stored.gsi2sk).toBe(stored.gsi1sk);
    const guardItem = (await s.items()).find((i) => i.pk === 'ORG#globex' && i.sk === 'PENDINGINVITE#svc@example.com')!;
    expect(guardItem).toMatchObject({ type: 'pending-invite', invitationId: res.body.id, expiresAt: res.body.expiresAt });
    // The same token cannot grant more than its scopes: org-admin needs *:*.
    const up = await invite(s, t.ctx, { email: 'svc2@example.com', role: 'org-admin' }, 'globex');
    expect(up.status).toBe(403);
    expect(up.body.error.code).toBe('role-ceiling');
    // A site token without invitation:create is refused; it can read no org, so 404.
    const reader = await token({ kind: 'site', scopes: ['project:read'] });
    expect((await invite(s, reader.ctx, { email: 'svc3@example.com', role: 'org-member' }, 'globex')).status).toBe(404);
    // The invitee accepts it: the membership is created although the sender is no member.
    expect((await accept(res.body.id, userContext('svcu', 'svc@example.com'))).status).toBe(200);
    expect((await s.rt.store.users.loadUser('svcu')).orgs).toEqual({ globex: ['org-member'] });
  });

  it('an org token invites into its own org only (null sender); a personal token invites as its owner', async () => {
    const org = await token({ kind: 'org', orgId: 'acme' });
    const res = await invite(s, org.ctx, { email: 'ot@example.com', role: 'org-member' });
    expect(res.status).toBe(201);
    expect(res.body.senderId).toBeNull();
    expect((await invite(s, org.ctx, { email: 'ot@example.com', role: 'org-member' }, 'globex')).status).toBe(404);
    const pat = await token({ kind: 'personal', ownerId: 'ada' });
    const byPat = await invite(s, pat.ctx, { email: 'pat@example.com', role: 'org-member' });
    expect(byPat.status).toBe(201);
    expect(byPat.body.senderId).toBe('ada');
    // A personal token narrowed to reading cannot invite.
    const narrow = await token({ kind: 'personal', ownerId: 'ada', scopes: ['org:read'] });
    expect((await invite(s, narrow.ctx, { email: 'pat2@example.com', role: 'org-member' })).status).toBe(403);
    // A token never lists or accepts invitations for a person.
    expect((await listMine(pat.ctx)).body.items).toEqual([]);
    expect((await accept(byPat.body.id, pat.ctx)).status).toBe(403);
    // Revoking the personal token that sent it voids the invitation.
    await s.rt.store.tokens.revokeToken(pat.id, s.rt.clock.seconds, 'ada');
    const acc = await accept(byPat.body.id, userContext('patu', 'pat@example.com'));
    expect(acc.status).toBe(403);
    expect(acc.body.error.code).toBe('sender-lost-right');
    // The org token still stands behind its invitation.
    expect((await accept(res.body.id, userContext('otu', 'ot@example.com'))).status).toBe(200);
  });

  it('sender checks at acceptance: a demoted site admin, an expired token, a deleted role', async () => {
    const now = s.rt.clock.seconds;
    await s.rt.store.users.putSiteRoles('root2', ['site-admin'], now);
    const a = (await invite(s, userContext('root2'), { email: 'sa@example.com', role: 'org-member' }, 'globex')).body;
    await s.rt.store.users.putSiteRoles('root2', [], now);
    expect((await accept(a.id, userContext('sau', 'sa@example.com'))).body.error.code).toBe('sender-lost-right');

    const short = await token({ kind: 'site', ttl: 3600 });
    const b = (await invite(s, short.ctx, { email: 'short@example.com', role: 'org-member' }, 'globex')).body;
    s.rt.clock.advance(3600);
    expect((await accept(b.id, userContext('shortu', 'short@example.com'))).body.error.code).toBe('sender-lost-right');

    await s.rt.store.policy.putRole({ name: 'temp', orgId: 'acme', site: [], org: [{ resource: 'project', action: 'read' }], member: [], user: [] }, s.rt.clock.seconds);
    const c = (await invite(s, userContext('ada'), { email: 'temp@example.com', role: 'temp' })).body;
    expect(await s.rt.store.policy.deleteRole('temp', 'acme', s.rt.clock.seconds)).toBe(true);
    expect((await accept(c.id, userContext('tempu', 'temp@example.com'))).body.error.code).toBe('sender-lost-right');
    expect((await s.rt.store.users.loadUser('sau')).orgs).toEqual({});
    expect((await s.rt.store.users.loadUser('shortu')).orgs).toEqual({});
  });

  it('expiry edges with TTL off: now+1 pending, now and now-1 expired in every read', async () => {
    const inv = (await invite(s, userContext('ada'), { email: 'edge@example.com', role: 'org-member', expiresInDays: 1 })).body;
    const statusIn = async (ctx: Ctx, q?: Record<string, string>) => (await listOrg(ctx, q)).body.items.find((i: { id: string }) => i.id === inv.id)?.status;
    s.rt.clock.advance(86400 - 1); // expiresAt = now + 1
    expect(await statusIn(userContext('ada'))).toBe('pending');
    s.rt.clock.advance(1); // expiresAt = now
    expect(await statusIn(userContext('ada'))).toBe('expired');
    s.rt.clock.advance(1); // expiresAt = now - 1
    expect(await statusIn(userContext('ada'))).toBe('expired');
    expect(await statusIn(userContext('ada'), { status: 'pending' })).toBeUndefined();
    expect(await statusIn(userContext('ada'), { status: 'expired' })).toBe('expired');
    // The invitee: not among their pending invitations, but visible when asked for expired ones.
    expect((await listMine(userContext('edgeu', 'edge@example.com'))).body.items).toEqual([]);
    expect((await listMine(userContext('edgeu', 'edge@example.com'), { status: 'expired' })).body.items.map((i: { status: string }) => i.status)).toEqual(['expired']);
    // The item still exists (no TTL here), yet: accept 410, decline 410, revoke 409.
    expect((await s.items()).some((i) => i.pk === `INVITE#${inv.id}`)).toBe(true);
    const before = await state();
    expect((await accept(inv.id, userContext('edgeu', 'edge@example.com'))).status).toBe(410);
    expect((await decline(inv.id, userContext('edgeu', 'edge@example.com'))).status).toBe(410);
    expect((await revoke(inv.id, userContext('ada'))).status).toBe(409);
    expect(await state()).toBe(before);
  });

  it('nothing but audit records is written on any 4xx', async () => {
    const inv = (await invite(s, userContext('ada'), { email: 'quiet@example.com', role: 'org-admin' })).body;
    const t = await token({ kind: 'site' });
    const lost = (await invite(s, t.ctx, { email: 'quiet2@example.com', role: 'org-member' })).body;
    await s.rt.store.tokens.revokeToken(t.id, s.rt.clock.seconds, 'root');
    const before = await state();
    const attempts: [Promise<{ status: number }>, number][] = [
      [accept(inv.id, userContext('eve', 'eve@example.com')), 403],
      [accept(inv.id, userContext('quiet')), 403],
      [accept(inv.id, tokenContext(t.id, `token:${t.id}`)), 401],
      [accept('B'.repeat(22), userContext('quiet', 'quiet@example.com')), 404],
      [accept(inv.id, userContext('existing', 'quiet@example.com')), 409],
      [accept(lost.id, userContext('quiet2', 'quiet2@example.com')), 403],
      [decline(inv.id, userContext('eve', 'eve@example.com')), 403],
      [revoke(inv.id, userContext('mo')), 403],
      [revoke(inv.id, userContext('stranger')), 404],
      [revoke(inv.id, userContext('root'), 'globex'), 404],
      [revoke('C'.repeat(22), userContext('ada')), 404],
      [invite(s, userContext('ada'), { email: 'quiet@example.com', role: 'org-member' }), 409],
      [invite(s, userContext('rita'), { email: 'q3@example.com', role: 'org-admin' }), 403],
      [invite(s, userContext('ada'), { email: 'q3@example.com', role: 'org-member', expiresInDays: 1.5 }), 400],
      [invite(s, userContext('ada'), { email: 'q3@example.com', role: 'org-member' }, 'nope'), 404],
    ];
    for (const [p, status] of attempts) expect((await p).status).toBe(status);
    expect(await state()).toBe(before);
    // The member who hit 409 kept their roles; the invitation is still usable by its invitee.
    expect((await s.rt.store.users.loadUser('existing')).orgs.acme).toEqual(['org-member']);
    expect((await accept(inv.id, userContext('quiet', 'quiet@example.com'))).status).toBe(200);
  });

  it('concurrent invitations for one email and org: exactly one 201', async () => {
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => invite(s, userContext('ada'), { email: i % 2 ? 'RACE2@example.com' : 'race2@example.com', role: 'org-member' })));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(4);
    expect((await s.items()).filter((i) => i.type === 'invitation' && i.email === 'race2@example.com')).toHaveLength(1);
  });

  it('concurrent accept and revoke: exactly one wins', async () => {
    const inv = (await invite(s, userContext('ada'), { email: 'ar@example.com', role: 'org-member' })).body;
    const [a, r] = await Promise.all([accept(inv.id, userContext('aru', 'ar@example.com')), revoke(inv.id, userContext('ada'))]);
    const member = (await s.rt.store.users.loadUser('aru')).orgs.acme;
    if (a.status === 200) {
      expect(r.status).toBe(409);
      expect(member).toEqual(['org-member']);
    } else {
      expect(r.status).toBe(204);
      expect([404, 409]).toContain(a.status);
      expect(member).toBeUndefined();
    }
  });

  it('org listing paginates with an opaque cursor pinned to the org', async () => {
    const p1 = await listOrg(userContext('ada'), { limit: '2' });
    expect(p1.status).toBe(200);
    expect(p1.body.items).toHaveLength(2);
    expect(p1.body.nextCursor).toEqual(expect.any(String));
    const p2 = await listOrg(userContext('ada'), { limit: '2', cursor: p1.body.nextCursor });
    expect(p2.body.items).toHaveLength(2);
    const ids = [...p1.body.items, ...p2.body.items].map((i: { id: string }) => i.id);
    expect(new Set(ids).size).toBe(4);
    // Newest first.
    expect(p1.body.items[0].createdAt).toBeGreaterThanOrEqual(p2.body.items[1].createdAt);
    expect((await listOrg(userContext('root'), { limit: '2', cursor: p1.body.nextCursor }, 'globex')).status).toBe(400);
    expect((await listOrg(userContext('ada'), { cursor: 'not-a-cursor!' })).status).toBe(400);
    expect((await listOrg(userContext('ada'), { limit: '0' })).status).toBe(400);
    expect((await listOrg(userContext('ada'), { extra: '1' })).status).toBe(400);
    expect((await listOrg(userContext('root'), undefined, 'nope')).status).toBe(404);
    expect((await listOrg(userContext('mo'))).status).toBe(403);
  });

  it('the views never carry internal fields', async () => {
    const res = await invite(s, userContext('ada'), { email: 'view@example.com', role: 'org-member' });
    expect(Object.keys(res.body).sort()).toEqual(['createdAt', 'email', 'expiresAt', 'id', 'orgId', 'role', 'senderId', 'status']);
    const listed = (await listOrg(userContext('ada'))).body.items[0];
    expect(Object.keys(listed).sort()).toEqual(['createdAt', 'email', 'expiresAt', 'id', 'orgId', 'role', 'senderId', 'status']);
  });

  it('denied attempts are audited; events carry ids and no credentials', async () => {
    const audit = (await s.items()).filter((i) => i.type === 'audit');
    const actions = new Set(audit.map((a) => `${a.action}:${a.outcome}`));
    for (const a of ['invitation.create:denied', 'invitation.create:failed', 'invitation.decline:denied', 'invitation.accept:denied', 'invitation.accept:failed', 'invitation.revoke:failed']) {
      expect(actions.has(a), a).toBe(true);
    }
    const created = s.rt.logs.map((l) => JSON.parse(l)).filter((l) => l.message === 'invitation.created');
    expect(created.length).toBeGreaterThan(0);
    for (const e of created) expect(e).toEqual(expect.objectContaining({ invitationId: expect.any(String), orgId: expect.any(String), email: expect.stringContaining('@'), expiresAt: expect.any(Number) }));
    const logText = s.rt.logs.join('\n');
    expect(secrets.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(logText).not.toContain(secret);
    expect(logText).not.toContain('secretHash');
  });
});

describe('transaction conflicts (as real DynamoDB reports racing transactions)', () => {
  it('a TransactionConflict is retried, then the condition decides; endless conflicts fail closed', async () => {
    const s = await setup();
    let conflicts = 0;
    const real = s.rt.store.db.client;
    const client = {
      send: (cmd: unknown) => {
        if (cmd instanceof TransactWriteItemsCommand && conflicts > 0) {
          conflicts--;
          const n = cmd.input.TransactItems?.length ?? 0;
          return Promise.reject(new TransactionCanceledException({ message: 'conflict', $metadata: {}, CancellationReasons: Array.from({ length: n }, (_, i) => ({ Code: i === 0 ? 'TransactionConflict' : 'None' })) }));
        }
        return (real.send as (c: unknown) => Promise<unknown>)(cmd);
      },
    } as unknown as DynamoDBClient;
    const repo = new InvitationRepo({ client, tableName: s.rt.tableName });
    const now = s.rt.clock.seconds;
    const r = { id: newInvitationId(), orgId: 'acme', email: 'tc@example.com', role: 'org-member', status: 'pending' as const, senderId: 'ada', createdAt: now, expiresAt: now + 86400 };
    conflicts = 2;
    expect(await repo.create(r, now)).toBeUndefined();
    conflicts = 1;
    expect(await repo.create({ ...r, id: newInvitationId() }, now)).toBe('pending-exists');
    conflicts = 3;
    expect(await repo.accept(r, 'tcu', now)).toBeUndefined();
    conflicts = 1;
    expect(await repo.accept(r, 'tcu', now)).toBe('not-pending');
    expect((await s.rt.store.users.loadUser('tcu')).orgs).toEqual({ acme: ['org-member'] });
    conflicts = 100;
    await expect(repo.close({ ...r, status: 'pending' }, 'revoked', now, 'ada')).rejects.toMatchObject({ status: 503 });
    conflicts = 0;
  });
});

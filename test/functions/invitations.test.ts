import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApi, type HttpApiEvent } from '../../core/http/api';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import { InvitationService } from '../../core/invitations/service';
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
    const events = s.rt.logs.map((l) => JSON.parse(l).event);
    for (const e of ['invitation.created', 'invitation.accepted', 'invitation.revoked', 'invitation.declined']) expect(events).toContain(e);
  });
});

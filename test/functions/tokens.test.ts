import { QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApi, type HttpApiEvent } from '../../core/http/api';
import { TokenService } from '../../core/tokens/service';
import { createRestAuthorizer } from '../../core/gateway/handlers';
import { httpEvent, tokenContext, userContext } from '../support/events';
import { testRuntime, TestClock } from '../support/runtime';

type Rt = Awaited<ReturnType<typeof testRuntime>>;

async function setup(options: { ttl?: boolean; clock?: TestClock } = {}) {
  const rt = await testRuntime({ ttl: options.ttl ?? false, ...(options.clock ? { clock: options.clock } : {}) });
  const now = rt.clock.seconds;
  await rt.store.orgs.createOrg({ id: 'acme', name: 'Acme', createdAt: now });
  await rt.store.orgs.createOrg({ id: 'globex', name: 'Globex', createdAt: now });
  await rt.store.users.putSiteRoles('root', ['site-admin'], now);
  await rt.store.users.putSiteRoles('auditor', ['site-viewer'], now);
  await rt.store.users.putMembership('acme', 'alice', ['org-viewer'], now);
  await rt.store.users.putMembership('acme', 'bob', ['org-admin'], now);
  await rt.store.users.putMembership('globex', 'carol', ['org-admin'], now);
  const api = createApi({ name: 'tokens', routes: new TokenService(rt).routes(), resolveCaller: (c) => rt.callers.fromContext(c), logger: rt.logger });
  const call = async (event: HttpApiEvent) => {
    const res = await api(event);
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, raw: res.body };
  };
  return { rt, call };
}

async function allItems(rt: Rt) {
  const out = await rt.store.db.client.send(new ScanCommand({ TableName: rt.tableName }));
  return (out.Items ?? []).map((i) => unmarshall(i));
}

async function auditRecords(rt: Rt) {
  return (await allItems(rt)).filter((i) => i.type === 'audit');
}

describe('POST /tokens and friends', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeAll(async () => {
    s = await setup();
  });

  it('creates a personal token: 201, secret once, never the hash', async () => {
    const res = await s.call(httpEvent('POST', '/tokens', { body: { name: 'ci', scopes: ['project:read'], expiresInDays: 30 }, context: userContext('alice') }));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ kind: 'personal', name: 'ci', scopes: ['project:read'], ownerId: 'alice', orgId: null, lastUsedAt: null, status: 'active' });
    expect(res.body.token).toMatch(/^gat_[0-9A-Za-z]{16}_[0-9A-Za-z]{38}$/);
    expect(res.body.expiresAt - res.body.createdAt).toBe(30 * 86400);
    expect(res.raw).not.toMatch(/secretHash|[0-9a-f]{64}/);
    const got = await s.call(httpEvent('GET', `/tokens/${res.body.id}`, { context: userContext('alice') }));
    expect(got.status).toBe(200);
    expect(got.body.token).toBeUndefined();
    expect(got.raw).not.toContain(res.body.token.split('_')[2]);
    const stored = (await allItems(s.rt)).find((i) => i.id === res.body.id && i.type === 'token');
    expect(stored?.expiresAt).toBe(res.body.expiresAt);
    expect(JSON.stringify(stored)).not.toContain(res.body.token.split('_')[2].slice(0, 32));
  });

  it.each([
    ['zero days', { name: 'x', expiresInDays: 0 }, 'invalid-field'],
    ['3651 days', { name: 'x', expiresInDays: 3651 }, 'invalid-field'],
    ['fractional', { name: 'x', expiresInDays: 1.5 }, 'invalid-field'],
    ['string', { name: 'x', expiresInDays: '10' }, 'invalid-field'],
    ['negative', { name: 'x', expiresInDays: -1 }, 'invalid-field'],
    ['null', { name: 'x', expiresInDays: null }, 'invalid-field'],
    ['long name', { name: 'x'.repeat(101) }, 'invalid-field'],
    ['empty name', { name: '  ' }, 'invalid-field'],
    ['unknown field', { name: 'x', admin: true }, 'unknown-field'],
    ['bad scope', { name: 'x', scopes: ['Project:Read'] }, 'invalid-scope'],
    ['scope with three parts', { name: 'x', scopes: ['a:b:c'] }, 'invalid-scope'],
    ['duplicate scopes', { name: 'x', scopes: ['a:b', 'a:b'] }, 'invalid-scope'],
    ['array body', [], 'invalid-field'],
  ])('400 for %s, nothing written', async (_n, body, code) => {
    const before = (await allItems(s.rt)).filter((i) => i.type === 'token').length;
    const res = await s.call(httpEvent('POST', '/tokens', { body, context: userContext('alice') }));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(code);
    expect((await allItems(s.rt)).filter((i) => i.type === 'token').length).toBe(before);
  });

  it('400 for bad JSON and huge bodies', async () => {
    expect((await s.call(httpEvent('POST', '/tokens', { rawBody: '{"name":', context: userContext('alice') }))).body.error.code).toBe('invalid-json');
    expect((await s.call(httpEvent('POST', '/tokens', { rawBody: JSON.stringify({ name: 'x'.repeat(70000) }), context: userContext('alice') }))).body.error.code).toBe('body-too-large');
  });

  it('accepts the default expiry of 365 days and expiry bounds 1 and 3650', async () => {
    for (const [days, expected] of [[undefined, 365], [1, 1], [3650, 3650]] as const) {
      const res = await s.call(httpEvent('POST', '/tokens', { body: { name: 'x', ...(days ? { expiresInDays: days } : {}) }, context: userContext('alice') }));
      expect(res.status).toBe(201);
      expect(res.body.expiresAt - res.body.createdAt).toBe(expected * 86400);
    }
  });

  it('403 for a scope the creator does not hold', async () => {
    const res = await s.call(httpEvent('POST', '/tokens', { body: { name: 'x', scopes: ['project:delete'] }, context: userContext('alice') }));
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('scope-escalation');
    const wild = await s.call(httpEvent('POST', '/tokens', { body: { name: 'x', scopes: ['*:*'] }, context: userContext('alice') }));
    expect(wild.status).toBe(403);
  });

  it('org tokens: org admins of that org only; scopes within their rights; others 404/403', async () => {
    const ok = await s.call(httpEvent('POST', '/orgs/acme/tokens', { body: { name: 'deploy', scopes: ['project:*'] }, context: userContext('bob') }));
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ kind: 'org', orgId: 'acme', ownerId: null });
    expect((await s.call(httpEvent('POST', '/orgs/acme/tokens', { body: { name: 'x' }, context: userContext('alice') }))).status).toBe(403);
    expect((await s.call(httpEvent('POST', '/orgs/acme/tokens', { body: { name: 'x' }, context: userContext('carol') }))).status).toBe(404);
    expect((await s.call(httpEvent('POST', '/orgs/nope/tokens', { body: { name: 'x' }, context: userContext('root') }))).status).toBe(404);
    expect((await s.call(httpEvent('POST', '/orgs/a%2Fb/tokens', { body: { name: 'x' }, context: userContext('root') }))).status).toBe(404);
  });

  it('site tokens: site admins only, and a site token may not mint a wider one', async () => {
    const ok = await s.call(httpEvent('POST', '/site/tokens', { body: { name: 'inviter', scopes: ['invitation:create', 'token:create'] }, context: userContext('root') }));
    expect(ok.status).toBe(201);
    expect((await s.call(httpEvent('POST', '/site/tokens', { body: { name: 'x' }, context: userContext('auditor') }))).status).toBe(403);
    expect((await s.call(httpEvent('POST', '/site/tokens', { body: { name: 'x' }, context: userContext('bob') }))).status).toBe(403);
    const fromToken = await s.call(httpEvent('POST', '/site/tokens', { body: { name: 'x', scopes: ['org:delete'] }, context: tokenContext(ok.body.id, `token:${ok.body.id}`) }));
    expect(fromToken.status).toBe(403);
    expect(fromToken.body.error.code).toBe('scope-escalation');
    const narrower = await s.call(httpEvent('POST', '/site/tokens', { body: { name: 'x', scopes: ['invitation:create'] }, context: tokenContext(ok.body.id, `token:${ok.body.id}`) }));
    expect(narrower.status).toBe(201);
  });

  it('401 without an authorizer context, or with a revoked token context', async () => {
    expect((await s.call(httpEvent('GET', '/tokens'))).status).toBe(401);
    expect((await s.call(httpEvent('GET', '/tokens', { context: { kind: 'token', tokenId: '0000000000000000', principalId: 'x' } }))).status).toBe(401);
  });
});

describe('listing, visibility and revocation', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeAll(async () => {
    s = await setup();
  });

  it('lists mine with cursor pagination, newest first', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await s.call(httpEvent('POST', '/tokens', { body: { name: `t${i}` }, context: userContext('bob') }))).body.id);
      s.rt.clock.advance(1);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await s.call(httpEvent('GET', '/tokens', { context: userContext('bob'), query: { limit: '2', ...(cursor ? { cursor } : {}) } }));
      expect(page.status).toBe(200);
      expect(page.raw).not.toMatch(/secretHash|"token":/);
      seen.push(...page.body.items.map((t: { id: string }) => t.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    expect((await s.call(httpEvent('GET', '/tokens', { context: userContext('alice') }))).body.items).toEqual([]);
  });

  it('rejects forged cursors and bad limits with 400', async () => {
    const forged = Buffer.from(JSON.stringify({ pk: 'TOKEN#x', sk: 'TOKEN', gsi1pk: 'TOKENS#USER#root', gsi1sk: '9' })).toString('base64url');
    expect((await s.call(httpEvent('GET', '/tokens', { context: userContext('bob'), query: { cursor: forged } }))).status).toBe(400);
    expect((await s.call(httpEvent('GET', '/tokens', { context: userContext('bob'), query: { cursor: '!!' } }))).status).toBe(400);
    expect((await s.call(httpEvent('GET', '/tokens', { context: userContext('bob'), query: { limit: '0' } }))).status).toBe(400);
    expect((await s.call(httpEvent('GET', '/tokens', { context: userContext('bob'), query: { limit: '1000' } }))).status).toBe(400);
  });

  it("someone else's token is 404, the same as a nonexistent one", async () => {
    const t = (await s.call(httpEvent('POST', '/tokens', { body: { name: 'mine' }, context: userContext('alice') }))).body;
    for (const [m, p] of [['GET', `/tokens/${t.id}`], ['DELETE', `/tokens/${t.id}`], ['POST', `/tokens/${t.id}/rotate`], ['GET', `/tokens/${t.id}/access-log`]] as const) {
      const other = await s.call(httpEvent(m, p, { context: userContext('carol') }));
      const none = await s.call(httpEvent(m, p.replace(t.id, '0000000000000000'), { context: userContext('carol') }));
      expect(other.status).toBe(404);
      expect(other.body).toEqual(none.body);
    }
    expect((await s.call(httpEvent('GET', '/tokens/..%2F..', { context: userContext('carol') }))).status).toBe(404);
    // A site admin sees it.
    expect((await s.call(httpEvent('GET', `/tokens/${t.id}`, { context: userContext('root') }))).status).toBe(200);
  });

  it('org tokens are visible to that org only; site view for site roles only', async () => {
    const t = (await s.call(httpEvent('POST', '/orgs/acme/tokens', { body: { name: 'svc', scopes: ['project:read'] }, context: userContext('bob') }))).body;
    expect((await s.call(httpEvent('GET', '/orgs/acme/tokens', { context: userContext('alice') }))).body.items.map((x: { id: string }) => x.id)).toContain(t.id);
    expect((await s.call(httpEvent('GET', '/orgs/acme/tokens', { context: userContext('carol') }))).status).toBe(404);
    expect((await s.call(httpEvent('GET', `/tokens/${t.id}`, { context: userContext('carol') }))).status).toBe(404);
    const site = await s.call(httpEvent('GET', '/site/tokens', { context: userContext('auditor') }));
    expect(site.status).toBe(200);
    expect(site.body.items.length).toBeGreaterThan(0);
    expect((await s.call(httpEvent('GET', '/site/tokens', { context: userContext('bob') }))).status).toBe(403);
  });

  it('revocation: 204 once, then 404; audit written for allowed and denied attempts', async () => {
    const t = (await s.call(httpEvent('POST', '/tokens', { body: { name: 'gone' }, context: userContext('alice') }))).body;
    expect((await s.call(httpEvent('DELETE', `/tokens/${t.id}`, { context: userContext('carol') }))).status).toBe(404);
    expect((await s.call(httpEvent('DELETE', `/tokens/${t.id}`, { context: userContext('alice') }))).status).toBe(204);
    expect((await s.call(httpEvent('DELETE', `/tokens/${t.id}`, { context: userContext('alice') }))).status).toBe(404);
    expect((await s.call(httpEvent('GET', `/tokens/${t.id}`, { context: userContext('alice') }))).body.status).toBe('revoked');
    const audit = (await auditRecords(s.rt)).filter((a) => a.target === `token:${t.id}`);
    expect(audit.map((a) => `${a.actor}:${a.outcome}`).sort()).toEqual(['alice:allowed', 'alice:denied', 'carol:denied']);
  });
});

describe('revocation and rotation reach the authorizer', () => {
  it('a revoked token is refused within GATEHOUSE_CACHE_TTL_SECONDS', async () => {
    const clock = new TestClock();
    const s = await setup({ clock });
    await s.rt.store.policy.putRoutes([{ route: 'GET /ping', resource: 'ping', action: 'read', public: true }], clock.seconds);
    const rest = createRestAuthorizer(s.rt.gateway);
    const t = (await s.call(httpEvent('POST', '/tokens', { body: { name: 'x' }, context: userContext('alice') }))).body;
    const ev = { type: 'TOKEN' as const, authorizationToken: `Bearer ${t.token}`, methodArn: 'arn:aws:execute-api:us-east-1:1:api/prod/GET/ping' };
    expect((await rest(ev)).policyDocument.Statement[0]!.Effect).toBe('Allow');
    expect((await s.call(httpEvent('DELETE', `/tokens/${t.id}`, { context: userContext('alice') }))).status).toBe(204);
    clock.advance(30);
    await expect(rest(ev)).rejects.toThrow(/^Unauthorized$/);
  });

  it('rotation: old secret stops at once, or after a bounded grace; expired cannot be rotated', async () => {
    const clock = new TestClock();
    const s = await setup({ clock });
    await s.rt.store.policy.putRoutes([{ route: 'GET /ping', resource: 'ping', action: 'read', public: true }], clock.seconds);
    const rest = createRestAuthorizer(s.rt.gateway);
    const ev = (tok: string) => ({ type: 'TOKEN' as const, authorizationToken: `Bearer ${tok}`, methodArn: 'arn:aws:execute-api:us-east-1:1:api/prod/GET/ping' });
    const t = (await s.call(httpEvent('POST', '/tokens', { body: { name: 'x', expiresInDays: 1 }, context: userContext('alice') }))).body;
    const r1 = await s.call(httpEvent('POST', `/tokens/${t.id}/rotate`, { context: userContext('alice') }));
    expect(r1.status).toBe(200);
    expect(r1.body.id).toBe(t.id);
    expect(r1.body.token).not.toBe(t.token);
    await expect(rest(ev(t.token))).rejects.toThrow(/^Unauthorized$/);
    expect((await rest(ev(r1.body.token))).policyDocument.Statement[0]!.Effect).toBe('Allow');

    const r2 = await s.call(httpEvent('POST', `/tokens/${t.id}/rotate`, { body: { graceSeconds: 600 }, context: userContext('alice') }));
    expect(r2.status).toBe(200);
    expect((await rest(ev(r1.body.token))).policyDocument.Statement[0]!.Effect).toBe('Allow');
    clock.advance(601);
    await expect(rest(ev(r1.body.token))).rejects.toThrow(/^Unauthorized$/);
    expect((await rest(ev(r2.body.token))).policyDocument.Statement[0]!.Effect).toBe('Allow');

    for (const grace of [86401, -1, 1.5, '60']) {
      expect((await s.call(httpEvent('POST', `/tokens/${t.id}/rotate`, { body: { graceSeconds: grace }, context: userContext('alice') }))).status).toBe(400);
    }
    clock.advance(86400);
    expect((await s.call(httpEvent('POST', `/tokens/${t.id}/rotate`, { context: userContext('alice') }))).status).toBe(410);
    await expect(rest(ev(r2.body.token))).rejects.toThrow(/^Unauthorized$/);
  });

  it('the access log lists failures, newest first, and nothing in it or the logs holds a secret', async () => {
    const clock = new TestClock();
    const s = await setup({ clock });
    await s.rt.store.policy.putRoutes([{ route: 'GET /ping', resource: 'ping', action: 'read' }], clock.seconds);
    const rest = createRestAuthorizer(s.rt.gateway);
    const t = (await s.call(httpEvent('POST', '/tokens', { body: { name: 'x' }, context: userContext('alice') }))).body;
    const { generateToken } = await import('../../core/identity/token-format');
    const forged = generateToken(t.id).token;
    await expect(rest({ type: 'TOKEN', authorizationToken: `Bearer ${forged}`, methodArn: 'arn:aws:execute-api:us-east-1:1:api/prod/GET/ping' })).rejects.toThrow();
    clock.advance(5);
    await rest({ type: 'TOKEN', authorizationToken: `Bearer ${t.token}`, methodArn: 'arn:aws:execute-api:us-east-1:1:api/prod/GET/ping' });
    const log = await s.call(httpEvent('GET', `/tokens/${t.id}/access-log`, { context: userContext('alice') }));
    expect(log.status).toBe(200);
    expect(log.body.items.map((e: { outcome: string; reason: string }) => `${e.outcome}:${e.reason}`)).toEqual(['deny:no-permission', 'unauthorized:token-bad-secret']);
    const secret = t.token.split('_')[2].slice(0, 32);
    for (const l of s.rt.logs) {
      expect(l).not.toContain(secret);
      expect(l).not.toContain(forged.split('_')[2]!.slice(0, 32));
    }
    const everything = JSON.stringify(await allItems(s.rt));
    expect(everything).not.toContain(secret);
  });
});

void QueryCommand;

describe('races and faults', () => {
  it('rotations are conditional on the hash that was read: of two racing rotations one wins', async () => {
    const s = await setup();
    const t = (await s.call(httpEvent('POST', '/tokens', { body: { name: 'x' }, context: userContext('alice') }))).body;
    const { generateToken, hashSecret, parseToken, secretMatches } = await import('../../core/identity/token-format');
    const before = (await s.rt.store.tokens.getToken(t.id))!;
    // Both writers read the same hash: exactly one conditional write can succeed.
    const [a, b] = [generateToken(t.id), generateToken(t.id)];
    const results = await Promise.all([a, b].map((x) => s.rt.store.tokens.rotateToken(t.id, before.secretHash, hashSecret(x.secret), s.rt.clock.seconds)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const stored = (await s.rt.store.tokens.getToken(t.id))!;
    const winner = results[0] ? a : b;
    expect(secretMatches(winner.secret, stored.secretHash)).toBe(true);
    // Through the API, racing rotations end with exactly one valid secret: the last one written.
    const res = await Promise.all([1, 2].map(() => s.call(httpEvent('POST', `/tokens/${t.id}/rotate`, { context: userContext('alice') }))));
    for (const r of res) expect([200, 409]).toContain(r.status);
    const after = (await s.rt.store.tokens.getToken(t.id))!;
    const valid = res.filter((r) => r.status === 200).filter((r) => secretMatches(parseToken(r.body.token)!.secret, after.secretHash));
    expect(valid).toHaveLength(1);
  });

  it('a DynamoDB failure is a 503 with no detail and leaves nothing half-written', async () => {
    const s = await setup();
    const client = s.rt.store.db.client;
    const before = (await allItems(s.rt)).filter((i) => i.type === 'token').length;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutItemCommand') throw Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException', $metadata: {} });
        return next(args);
      },
      { step: 'initialize', name: 'fail-puts' },
    );
    try {
      const res = await s.call(httpEvent('POST', '/tokens', { body: { name: 'x' }, context: userContext('alice') }));
      expect(res.status).toBe(503);
      expect(res.body.error).toEqual({ code: 'unavailable', message: 'service unavailable, try again' });
      expect(res.raw).not.toMatch(/Rate exceeded|Provisioned/);
    } finally {
      client.middlewareStack.remove('fail-puts');
    }
    expect((await allItems(s.rt)).filter((i) => i.type === 'token').length).toBe(before);
  });
});

/**
 * Idempotency-Key on token creation: a retried create answers the token the first one
 * created (secret included) and mints nothing; the secret is stored only sealed under a
 * key derived from the Idempotency-Key; keys are per caller, per request, and expire.
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { createApi, type HttpApiEvent } from '../../core/http/api';
import { deriveKeys, openSecret } from '../../core/tokens/idempotency';
import { TokenService } from '../../core/tokens/service';
import { httpEvent, tokenContext, userContext, type AuthorizerContext } from '../support/events';
import { testRuntime } from '../support/runtime';

const KEY = '3f1c2d9e-8b7a-4c6d-9e0f-1a2b3c4d5e6f';

async function setup() {
  const rt = await testRuntime({ ttl: false });
  const now = rt.clock.seconds;
  await rt.store.orgs.createOrg({ id: 'acme', name: 'Acme', createdAt: now });
  await rt.store.users.putSiteRoles('root', ['site-admin'], now);
  await rt.store.users.putMembership('acme', 'alice', ['org-admin'], now);
  await rt.store.users.putMembership('acme', 'bob', ['org-admin'], now);
  const api = createApi({ name: 'tokens', routes: new TokenService(rt).routes(), resolveCaller: (c) => rt.callers.fromContext(c), logger: rt.logger });
  const call = async (event: HttpApiEvent) => {
    const res = await api(event);
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
  };
  const create = (path: string, body: unknown, context: AuthorizerContext, key?: string) => {
    const event = httpEvent('POST', path, { body, context });
    if (key !== undefined) event.headers = { ...event.headers, 'idempotency-key': key };
    return call(event);
  };
  const items = async () => ((await rt.store.db.client.send(new ScanCommand({ TableName: rt.tableName, ConsistentRead: true }))).Items ?? []).map((i) => unmarshall(i));
  const tokens = async () => (await items()).filter((i) => i.type === 'token');
  return { rt, call, create, items, tokens };
}

describe('Idempotency-Key on token creation', () => {
  it('a retry with the same key and body answers the same token, secret included, and mints no second one', async () => {
    const s = await setup();
    const first = await s.create('/tokens', { name: 'laptop', expiresInDays: 30 }, userContext('alice'), KEY);
    expect(first.status).toBe(201);
    // The same body with its fields in another order is the same request.
    const again = await s.create('/tokens', { expiresInDays: 30, name: 'laptop' }, userContext('alice'), KEY);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(await s.tokens()).toHaveLength(1);
    // The answered secret is the one that works.
    const resolved = await s.rt.callers.resolve(again.body.token);
    expect(resolved.token?.id).toBe(first.body.id);
  });

  it('the secret is stored only sealed: neither it nor the key is in the table, and another key cannot open it', async () => {
    const s = await setup();
    const res = await s.create('/orgs/acme/tokens', { name: 'ci' }, userContext('alice'), KEY);
    expect(res.status).toBe(201);
    const secret = res.body.token.split('_')[2].slice(0, 32);
    const all = JSON.stringify(await s.items());
    expect(all).not.toContain(secret);
    expect(all).not.toContain(KEY);
    const record = (await s.items()).find((i) => i.type === 'idempotency')!;
    expect(record).toMatchObject({ tokenId: res.body.id });
    expect(record.expiresAt).toBe(s.rt.clock.seconds + 24 * 3600);
    const held = { lookup: String(record.pk).slice('IDEMPOTENCY#'.length), tokenId: record.tokenId, fingerprint: record.fingerprint };
    expect(openSecret(record.sealed, deriveKeys(KEY, 'alice').sealKey, held)).toBe(secret);
    expect(openSecret(record.sealed, deriveKeys(`${KEY}x`, 'alice').sealKey, held)).toBeUndefined();
    expect(openSecret(record.sealed, deriveKeys(KEY, 'bob').sealKey, held)).toBeUndefined();
  });

  it('the same key with another body or endpoint is 422 idempotency-key-reused, and writes nothing', async () => {
    const s = await setup();
    expect((await s.create('/orgs/acme/tokens', { name: 'ci' }, userContext('alice'), KEY)).status).toBe(201);
    const nonAudit = async () => (await s.items()).filter((i) => i.type !== 'audit').length;
    const before = await nonAudit();
    for (const [path, body] of [['/orgs/acme/tokens', { name: 'ci2' }], ['/orgs/acme/tokens', { name: 'ci', expiresInDays: 5 }], ['/tokens', { name: 'ci' }]] as const) {
      const res = await s.create(path, body, userContext('alice'), KEY);
      expect(res.status, path).toBe(422);
      expect(res.body.error.code).toBe('idempotency-key-reused');
    }
    // Only the audit records of the refusals were added.
    expect(await nonAudit()).toBe(before);
    expect(await s.tokens()).toHaveLength(1);
  });

  it('keys are scoped to the caller: the same key from someone else creates their own token', async () => {
    const s = await setup();
    const a = await s.create('/orgs/acme/tokens', { name: 'ci' }, userContext('alice'), KEY);
    const b = await s.create('/orgs/acme/tokens', { name: 'ci' }, userContext('bob'), KEY);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.body.id).not.toBe(a.body.id);
    expect(await s.tokens()).toHaveLength(2);
  });

  it('keys expire after 24 hours (checked on read: TTL deletes late)', async () => {
    const s = await setup();
    const first = await s.create('/site/tokens', { name: 'ops' }, userContext('root'), KEY);
    s.rt.clock.advance(24 * 3600 - 1);
    expect((await s.create('/site/tokens', { name: 'ops' }, userContext('root'), KEY)).body.id).toBe(first.body.id);
    s.rt.clock.advance(1);
    const later = await s.create('/site/tokens', { name: 'ops' }, userContext('root'), KEY);
    expect(later.status).toBe(201);
    expect(later.body.id).not.toBe(first.body.id);
    expect(await s.tokens()).toHaveLength(2);
  });

  it('racing requests with one key create one token and all answer it', async () => {
    const s = await setup();
    const answers = await Promise.all(Array.from({ length: 6 }, () => s.create('/tokens', { name: 'race' }, userContext('alice'), KEY)));
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(201));
    expect(new Set(answers.map((a) => a.body.token)).size).toBe(1);
    expect(await s.tokens()).toHaveLength(1);
  });

  it('a token rotated since cannot be answered again: 409 idempotency-token-changed', async () => {
    const s = await setup();
    const first = await s.create('/tokens', { name: 'laptop' }, userContext('alice'), KEY);
    expect((await s.call(httpEvent('POST', `/tokens/${first.body.id}/rotate`, { context: userContext('alice') }))).status).toBe(200);
    const retry = await s.create('/tokens', { name: 'laptop' }, userContext('alice'), KEY);
    expect(retry.status).toBe(409);
    expect(retry.body.error.code).toBe('idempotency-token-changed');
    expect(await s.tokens()).toHaveLength(1);
  });

  it.each([
    ['too short', 'abc'],
    ['two keys joined by API Gateway', `${KEY},${KEY}`],
    ['a space', `${KEY} x`],
    ['too long', 'k'.repeat(256)],
  ])('400 invalid-idempotency-key for %s, nothing written', async (_n, key) => {
    const s = await setup();
    const res = await s.create('/tokens', { name: 'x' }, userContext('alice'), key);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid-idempotency-key');
    expect(await s.tokens()).toHaveLength(0);
  });

  it('without a key nothing changes: two creates are two tokens; a token acting for its owner has its own key space', async () => {
    const s = await setup();
    await s.create('/tokens', { name: 'a' }, userContext('alice'));
    await s.create('/tokens', { name: 'a' }, userContext('alice'));
    expect(await s.tokens()).toHaveLength(2);
    const own = (await s.tokens())[0]!;
    const viaToken = await s.create('/tokens', { name: 'a' }, tokenContext(String(own.id), 'alice', 'alice'), KEY);
    const viaUser = await s.create('/tokens', { name: 'a' }, userContext('alice'), KEY);
    expect(viaToken.status).toBe(201);
    expect(viaUser.body.id).not.toBe(viaToken.body.id);
  });
});

describe('Idempotency-Key and org deletion (a token created once is created like any other)', () => {
  it('an org token created with a key is indexed in its org, and none is created in an org being deleted', async () => {
    const s = await setup();
    const res = await s.create('/orgs/acme/tokens', { name: 'ci' }, userContext('alice'), KEY);
    expect(res.status).toBe(201);
    // The deletion cascade finds org tokens through the org's own partition.
    expect((await s.items()).some((i) => i.pk === 'ORG#acme' && String(i.sk).includes(res.body.id))).toBe(true);
    // The org is marked for deletion: an idempotent create is refused like a plain one, and writes nothing.
    const { UpdateItemCommand } = await import('@aws-sdk/client-dynamodb');
    await s.rt.store.db.client.send(new UpdateItemCommand({ TableName: s.rt.tableName, Key: { pk: { S: 'ORG#acme' }, sk: { S: 'ORG' } }, UpdateExpression: 'SET deletingAt = :t', ExpressionAttributeValues: { ':t': { N: String(s.rt.clock.seconds) } } }));
    const before = (await s.tokens()).length;
    const refused = await s.create('/orgs/acme/tokens', { name: 'late' }, userContext('alice'), '9f1c2d9e-8b7a-4c6d-9e0f-1a2b3c4d5e6f');
    expect(refused.status).toBe(404);
    expect(await s.tokens()).toHaveLength(before);
    expect((await s.items()).some((i) => i.type === 'idempotency' && i.tokenId !== res.body.id)).toBe(false);
  });
});

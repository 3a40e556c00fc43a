import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../core/identity/token-format';
import { countRequests } from '../support/count';
import { iamAllows } from '../support/iam';
import { TestClock } from '../support/runtime';
import { arn, effect, world } from './fixtures';

type World = Awaited<ReturnType<typeof world>>;

async function accessLog(w: World, tokenId: string) {
  const out = await w.rt.store.db.client.send(new QueryCommand({
    TableName: w.rt.tableName,
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :log)',
    ExpressionAttributeValues: { ':pk': { S: `TOKEN#${tokenId}` }, ':log': { S: 'LOG#' } },
  }));
  return (out.Items ?? []).map((i) => unmarshall(i));
}

describe('gatehouse tokens at the authorizer', () => {
  let w: World;
  beforeAll(async () => {
    // TTL off: expired items stay in the table, as they do on AWS for days.
    w = await world({ ttl: false });
  });

  it('a personal token acts for its owner, narrowed by its scopes', async () => {
    const t = await w.token({ kind: 'personal', ownerId: 'bob', scopes: ['project:read'] });
    const res = await w.rest(w.tokenEvent(t.credential, 'GET', '/orgs/acme/projects/p1'));
    expect(effect(res)).toBe('Allow');
    expect(res.context).toMatchObject({ principalId: 'bob', userId: 'bob', kind: 'token', tokenId: t.id });
    expect(effect(await w.rest(w.tokenEvent(t.credential, 'DELETE', '/orgs/acme/projects/p1')))).toBe('Deny');
    // The cached Allow of a narrowed token does not cover what only its owner may do.
    expect(iamAllows(res, arn('DELETE', '/orgs/acme/projects/p1'))).toBe(false);
  });

  it('scopes never widen: *:* on a personal token gives only the owner rights', async () => {
    const t = await w.token({ kind: 'personal', ownerId: 'alice', scopes: ['*:*'] });
    expect(effect(await w.rest(w.tokenEvent(t.credential, 'DELETE', '/orgs/acme/projects/p1')))).toBe('Deny');
    expect(effect(await w.rest(w.tokenEvent(t.credential, 'GET', '/admin/x')))).toBe('Deny');
  });

  it('a stored scope that no longer parses makes the token grant nothing (never all of its holder\'s rights)', async () => {
    const personal = await w.token({ kind: 'personal', ownerId: 'bob', scopes: ['project:read', 'Not A Scope'] });
    expect(effect(await w.rest(w.tokenEvent(personal.credential, 'GET', '/orgs/acme/projects/p1')))).toBe('Deny');
    expect(effect(await w.rest(w.tokenEvent(personal.credential, 'DELETE', '/orgs/acme/projects/p1')))).toBe('Deny');
    const site = await w.token({ kind: 'site', scopes: ['project:read', 'project'] });
    expect(effect(await w.rest(w.tokenEvent(site.credential, 'GET', '/orgs/initech/projects/p1')))).toBe('Deny');
  });

  it('an org token is a member of its org only', async () => {
    const t = await w.token({ kind: 'org', orgId: 'acme', scopes: ['project:*'] });
    const res = await w.rest(w.tokenEvent(t.credential, 'DELETE', '/orgs/acme/projects/p1'));
    expect(effect(res)).toBe('Allow');
    expect(res.context).toMatchObject({ principalId: `token:${t.id}`, kind: 'token', tokenId: t.id, orgIds: 'acme' });
    expect(res.context?.userId).toBeUndefined();
    expect(effect(await w.rest(w.tokenEvent(t.credential, 'GET', '/orgs/globex/projects/p1')))).toBe('Deny');
    expect(effect(await w.rest(w.tokenEvent(t.credential, 'GET', '/orgs/acme/projects/p1/secrets')))).toBe('Deny');
  });

  it('a site token holds its scopes everywhere', async () => {
    const t = await w.token({ kind: 'site', scopes: ['project:read', 'project:list'] });
    expect(effect(await w.rest(w.tokenEvent(t.credential, 'GET', '/orgs/initech/projects/p1')))).toBe('Allow');
    expect(effect(await w.rest(w.tokenEvent(t.credential, 'DELETE', '/orgs/initech/projects/p1')))).toBe('Deny');
  });

  it('expiry edges: expiresAt = now±1 and = now (while the item still exists)', async () => {
    const now = w.rt.clock.seconds;
    const past = await w.token({ kind: 'personal', ownerId: 'bob', expiresAt: now - 1 });
    const exact = await w.token({ kind: 'personal', ownerId: 'bob', expiresAt: now });
    const future = await w.token({ kind: 'personal', ownerId: 'bob', expiresAt: now + 1 });
    await expect(w.rest(w.tokenEvent(past.credential, 'GET', '/health'))).rejects.toThrow(/^Unauthorized$/);
    await expect(w.rest(w.tokenEvent(exact.credential, 'GET', '/health'))).rejects.toThrow(/^Unauthorized$/);
    expect(effect(await w.rest(w.tokenEvent(future.credential, 'GET', '/health')))).toBe('Allow');
    expect((await w.rt.store.tokens.getToken(past.id))?.id).toBe(past.id);
  });

  it('a wrong secret for a real id is 401 and lands in the access log', async () => {
    const t = await w.token({ kind: 'personal', ownerId: 'bob' });
    const forged = generateToken(t.id).token;
    await expect(w.rest(w.tokenEvent(forged, 'GET', '/orgs/acme/projects'))).rejects.toThrow(/^Unauthorized$/);
    const log = await accessLog(w, t.id);
    expect(log).toEqual([expect.objectContaining({ outcome: 'unauthorized', reason: 'token-bad-secret', route: 'GET /orgs/acme/projects' })]);
    expect(log[0]!.expiresAt).toBeGreaterThan(w.rt.clock.seconds + 89 * 86400);
  });

  it('revoked tokens are refused', async () => {
    const t = await w.token({ kind: 'personal', ownerId: 'bob', revokedAt: w.rt.clock.seconds - 5 });
    await expect(w.rest(w.tokenEvent(t.credential, 'GET', '/health'))).rejects.toThrow(/^Unauthorized$/);
    expect((await accessLog(w, t.id))[0]).toMatchObject({ reason: 'token-revoked' });
  });

  it('malformed and bad-checksum tokens never reach DynamoDB', async () => {
    const t = await w.token({ kind: 'personal', ownerId: 'bob' });
    const bad = [t.credential.slice(0, -1) + (t.credential.endsWith('A') ? 'B' : 'A'), t.credential + 'x', 'gat_' + 'x'.repeat(55), 'gat_'];
    const counter = countRequests(w.rt.store.db.client);
    for (const b of bad) await expect(w.rest(w.tokenEvent(b, 'GET', '/health'))).rejects.toThrow(/^Unauthorized$/);
    expect(counter.total()).toBe(0);
    counter.stop();
  });

  it('successful uses are logged once per route per minute; lastUsedAt once per hour', async () => {
    const t = await w.token({ kind: 'personal', ownerId: 'bob' });
    for (let i = 0; i < 5; i++) await w.rest(w.tokenEvent(t.credential, 'GET', '/orgs/acme/projects'));
    await w.rest(w.tokenEvent(t.credential, 'GET', '/health'));
    const log = await accessLog(w, t.id);
    expect(log.filter((e) => e.outcome === 'allow').map((e) => e.route).sort()).toEqual(['GET /health', 'GET /orgs/{orgId}/projects']);
    expect((await w.rt.store.tokens.getToken(t.id))?.lastUsedAt).toBe(w.rt.clock.seconds);
  });

  it('denied uses are always logged', async () => {
    const t = await w.token({ kind: 'personal', ownerId: 'alice' });
    for (let i = 0; i < 3; i++) await w.rest(w.tokenEvent(t.credential, 'DELETE', '/orgs/acme/projects/p1'));
    expect((await accessLog(w, t.id)).filter((e) => e.outcome === 'deny')).toHaveLength(3);
  });

  it('a demoted owner takes the personal token down too', async () => {
    const clock = new TestClock();
    const w2 = await world({ clock });
    const t = await w2.token({ kind: 'personal', ownerId: 'bob' });
    expect(effect(await w2.rest(w2.tokenEvent(t.credential, 'DELETE', '/orgs/acme/projects/p1')))).toBe('Allow');
    await w2.rt.store.users.putMembership('acme', 'bob', ['org-member'], clock.seconds);
    clock.advance(31);
    expect(effect(await w2.rest(w2.tokenEvent(t.credential, 'DELETE', '/orgs/acme/projects/p1')))).toBe('Deny');
  });
});

describe('DynamoDB requests per decision', () => {
  it('cold JWT principal: 1; warm: 0. Cold gatehouse token: 2 reads', async () => {
    const w = await world();
    const warmUp = await w.jwtFor('root');
    await w.rest(w.tokenEvent(warmUp, 'GET', '/health')); // loads the policy
    const counter = countRequests(w.rt.store.db.client);
    const jwt = await w.jwtFor('alice');
    await w.rest(w.tokenEvent(jwt, 'GET', '/orgs/acme/projects'));
    expect(counter.total()).toBe(1);
    await w.rest(w.tokenEvent(jwt, 'GET', '/orgs/acme/projects'));
    expect(counter.total()).toBe(1);
    counter.reset();
    const t = await w.token({ kind: 'personal', ownerId: 'bob', lastUsedAt: w.rt.clock.seconds });
    counter.reset();
    await w.rest(w.tokenEvent(t.credential, 'GET', '/orgs/acme/projects'));
    expect(counter.reads()).toBe(2);
    counter.reset();
    await w.rest(w.tokenEvent(t.credential, 'GET', '/orgs/acme/projects'));
    expect(counter.total()).toBe(0);
    counter.stop();
  });
});

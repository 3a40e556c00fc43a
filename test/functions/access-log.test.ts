import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { buildHandlers } from '../../functions/apps';
import { createRuntime } from '../../functions/runtime';
import { generateToken } from '../../core/identity/token-format';
import { countRequests } from '../support/count';
import { httpEvent, userContext } from '../support/events';
import { testRuntime } from '../support/runtime';

/**
 * Token ids are public and the checksum is computable offline, so anyone can send a
 * well-formed token with a wrong secret for a real id. Each such attempt used to write
 * one access-log item kept 90 days. DESIGN §6: failures are aggregated per (token,
 * reason, source IP, minute) with a `count`, so writes stay bounded and nothing is hidden.
 */

const API = 'arn:aws:execute-api:us-east-1:123456789012:api123/prod';
const WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'TransactWriteItemsCommand', 'BatchWriteItemCommand']);

async function setup() {
  const rt = await testRuntime({ ttl: false });
  const h = buildHandlers(rt);
  await rt.store.policy.putRoutes([{ route: 'GET /health', resource: 'health', action: 'read', public: true }, { route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}' }], rt.clock.seconds);
  const created = await h.tokens(httpEvent('POST', '/tokens', { body: { name: 'ci' }, context: userContext('alice') }));
  expect(created.statusCode).toBe(201);
  const token = JSON.parse(created.body) as { id: string; token: string };
  /** A REST REQUEST event from `ip` with `credential` (a wrong secret unless given). */
  const attempt = (options: { ip?: string; path?: string; credential?: string } = {}) =>
    h.rest({
      type: 'REQUEST',
      methodArn: `${API}/GET${options.path ?? '/orgs/acme/projects'}`,
      headers: { Authorization: `Bearer ${options.credential ?? generateToken(token.id).token}` },
      requestContext: { identity: { sourceIp: options.ip ?? '198.51.100.7' } },
    });
  const logItems = async () => {
    const out = await rt.store.db.client.send(new QueryCommand({
      TableName: rt.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :log)',
      ExpressionAttributeValues: { ':pk': { S: `TOKEN#${token.id}` }, ':log': { S: 'LOG#' } },
    }));
    return (out.Items ?? []).map((i) => unmarshall(i));
  };
  const failures = async () => (await logItems()).filter((i) => i.outcome === 'unauthorized');
  return { rt, h, token, attempt, logItems, failures };
}

const sum = (items: Record<string, unknown>[]) => items.reduce((n, i) => n + Number(i.count ?? 1), 0);

describe('failed attempts on a known token id', () => {
  it('200 bad-secret attempts in under a second: a bounded number of writes and items, total count 200', async () => {
    const s = await setup();
    const counter = countRequests(s.rt.store.db.client);
    for (let i = 0; i < 200; i++) {
      s.rt.clock.ms += 4;
      // Attacker-chosen paths do not split the aggregate.
      await expect(s.attempt({ path: `/orgs/acme/projects?i=${i}`.replace('?', '/p') })).rejects.toThrow(/^Unauthorized$/);
    }
    const burstWrites = counter.commands().filter((c) => WRITES.has(c));
    // The first failure of a key is written at once; the rest of the burst waits.
    expect(burstWrites.length).toBeLessThanOrEqual(2);
    expect((await s.failures()).length).toBe(1);
    // The next invocation after the flush interval (here: a good request, a minute later) writes the rest.
    s.rt.clock.advance(61);
    await s.attempt({ path: '/health', credential: s.token.token });
    const failures = await s.failures();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ outcome: 'unauthorized', reason: 'token-bad-secret', sourceIp: '198.51.100.7', count: 200 });
    expect(failures[0]!.expiresAt).toBeGreaterThan(s.rt.clock.seconds + 89 * 86400);
    expect(counter.commands().filter((c) => WRITES.has(c)).length).toBeLessThanOrEqual(5);
    counter.stop();

    const page = await s.h.tokens(httpEvent('GET', `/tokens/${s.token.id}/access-log`, { context: userContext('alice') }));
    expect(page.statusCode).toBe(200);
    const entries = (JSON.parse(page.body) as { items: Record<string, unknown>[] }).items;
    expect(entries.filter((e) => e.outcome === 'unauthorized')).toEqual([expect.objectContaining({ reason: 'token-bad-secret', sourceIp: '198.51.100.7', count: 200 })]);
  });

  it('aggregates per reason, source IP and minute; nothing is hidden', async () => {
    const s = await setup();
    for (let i = 0; i < 30; i++) {
      s.rt.clock.ms += 10;
      await expect(s.attempt({ ip: i % 3 === 0 ? '203.0.113.1' : '203.0.113.2' })).rejects.toThrow(/^Unauthorized$/);
    }
    s.rt.clock.advance(60);
    for (let i = 0; i < 5; i++) await expect(s.attempt({ ip: '203.0.113.1' })).rejects.toThrow(/^Unauthorized$/);
    // Revoked: the right secret, another reason.
    expect((await s.h.tokens(httpEvent('DELETE', `/tokens/${s.token.id}`, { context: userContext('alice') }))).statusCode).toBe(204);
    s.rt.clock.advance(31); // past the authorizer's cache TTL
    for (let i = 0; i < 4; i++) await expect(s.attempt({ ip: '203.0.113.1', credential: s.token.token })).rejects.toThrow(/^Unauthorized$/);
    s.rt.clock.advance(60);
    await expect(s.attempt({ ip: '203.0.113.9', credential: s.token.token })).rejects.toThrow(/^Unauthorized$/);
    const failures = await s.failures();
    const byKey = Object.fromEntries(failures.map((f) => [`${f.reason} ${f.sourceIp} ${Math.floor(Number(f.at) / 60)}`, f.count]));
    expect(Object.keys(byKey)).toHaveLength(5);
    expect(Object.values(byKey).sort()).toEqual([1, 10, 20, 4, 5].sort());
    expect(sum(failures)).toBe(30 + 5 + 4 + 1);
  });

  it('writes per key stay bounded over a whole minute of attempts, and counts stay exact', async () => {
    const s = await setup();
    const start = s.rt.clock.ms - (s.rt.clock.ms % 60_000);
    s.rt.clock.ms = start;
    const counter = countRequests(s.rt.store.db.client);
    for (let i = 0; i < 600; i++) {
      s.rt.clock.ms = start + i * 100;
      await expect(s.attempt()).rejects.toThrow(/^Unauthorized$/);
    }
    // At most one write per key per flush interval (10 s) within the minute...
    expect(counter.commands().filter((c) => WRITES.has(c)).length).toBeLessThanOrEqual(6);
    s.rt.clock.ms = start + 61_000;
    counter.reset();
    await s.attempt({ path: '/health', credential: s.token.token });
    // ...and one after it (besides the good request's own use entry and lastUsedAt).
    expect(counter.commands().filter((c) => WRITES.has(c)).length).toBeLessThanOrEqual(3);
    counter.stop();
    const failures = await s.failures();
    expect(failures).toHaveLength(1);
    expect(failures[0]!.count).toBe(600);
  });

  it('two containers attacked at once add to the same item', async () => {
    const s = await setup();
    // A second container on the same table: its own authorizer, caches and coalescer.
    const other = buildHandlers(createRuntime({ GATEHOUSE_TABLE: s.rt.tableName, GATEHOUSE_LOG_LEVEL: 'error' }, { client: s.rt.store.db.client, now: s.rt.clock.now }));
    const event = () => ({ type: 'REQUEST' as const, methodArn: `${API}/GET/x`, headers: { Authorization: `Bearer ${generateToken(s.token.id).token}` }, requestContext: { identity: { sourceIp: '198.51.100.7' } } });
    for (let i = 0; i < 50; i++) {
      s.rt.clock.ms += 5;
      await expect(s.h.rest(event())).rejects.toThrow(/^Unauthorized$/);
      await expect(other.rest(event())).rejects.toThrow(/^Unauthorized$/);
    }
    s.rt.clock.advance(61);
    await s.attempt({ path: '/health', credential: s.token.token });
    await other.rest({ ...event(), methodArn: `${API}/GET/health`, headers: { Authorization: `Bearer ${s.token.token}` } });
    const failures = await s.failures();
    expect(failures).toHaveLength(1);
    expect(failures[0]!.count).toBe(100);
  });
});

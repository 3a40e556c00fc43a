import { GetItemCommand, PutItemCommand, ScanCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { ADMIN_SET_ROUTES } from '../../core/policy/admin-set';
import type { RouteRule } from '../../core/policy/routes';
import { createDynamoStore } from '../../core/store/dynamo/index';
import { DEMO_SEED_ROUTES } from '../../local/seed-routes';
import { countRequests } from '../support/count';
import { freshTable } from '../support/dynamo';

const NOW = 1_800_000_000;

/** The admin API's route keys before policy sets: what `adminRoutePolicies()` stored one rule for each. */
const OLD_ADMIN_ROUTE_KEYS = [
  'POST /tokens', 'POST /orgs/{orgId}/tokens', 'POST /site/tokens', 'GET /tokens', 'GET /orgs/{orgId}/tokens', 'GET /site/tokens',
  'GET /tokens/{id}', 'DELETE /tokens/{id}', 'POST /tokens/{id}/rotate', 'GET /tokens/{id}/access-log', 'POST /orgs/{orgId}/invitations',
  'GET /orgs/{orgId}/invitations', 'DELETE /orgs/{orgId}/invitations/{id}', 'GET /invitations', 'POST /invitations/{id}/accept',
  'POST /invitations/{id}/decline', 'GET /me', 'POST /orgs', 'GET /orgs', 'GET /orgs/{orgId}', 'DELETE /orgs/{orgId}', 'GET /orgs/{orgId}/members',
  'PUT /orgs/{orgId}/members/{userId}', 'DELETE /orgs/{orgId}/members/{userId}', 'PUT /users/{userId}/site-roles', 'GET /roles',
  'PUT /roles/{name}', 'DELETE /roles/{name}', 'GET /orgs/{orgId}/roles', 'PUT /orgs/{orgId}/roles/{name}', 'DELETE /orgs/{orgId}/roles/{name}',
  'GET /policies/routes', 'PUT /policies/routes', 'GET /policies/gate', 'PUT /policies/gate', 'POST /authz/explain', 'GET /audit',
];
const oldAdminRule = (route: string): RouteRule => ({ route, resource: 'api', action: 'call', public: true, condition: 'principal.kind != "anonymous"' });

/**
 * Writes the route table and gate exactly as gatehouse did before policy sets (the
 * `POLICY` partition's `ROUTES`/`GATE` items, the shared `VERSION` bumped in the same
 * transaction): what `npm start` and `bootstrap-admin` left in existing tables.
 */
async function writeOldLayout(db: { client: import('@aws-sdk/client-dynamodb').DynamoDBClient; tableName: string }, item: { sk: 'ROUTES'; routes: RouteRule[] } | { sk: 'GATE'; expression: string }) {
  const bump = {
    Update: {
      TableName: db.tableName,
      Key: marshall({ pk: 'POLICY', sk: 'VERSION' }),
      UpdateExpression: 'ADD #v :one SET updatedAt = :now, #t = :type',
      ExpressionAttributeNames: { '#v': 'version', '#t': 'type' },
      ExpressionAttributeValues: marshall({ ':one': 1, ':now': NOW, ':type': 'version' }),
    },
  };
  const stored = item.sk === 'ROUTES' ? { pk: 'POLICY', sk: 'ROUTES', type: 'routes', routes: item.routes, updatedAt: NOW, updatedBy: 'local-seed' } : { pk: 'POLICY', sk: 'GATE', type: 'gate', expression: item.expression, updatedAt: NOW, updatedBy: 'admin' };
  await db.client.send(new TransactWriteItemsCommand({ TransactItems: [{ Put: { TableName: db.tableName, Item: marshall(stored, { removeUndefinedValues: true }) } }, bump] }));
}

async function setup() {
  const { client, tableName } = await freshTable();
  const store = createDynamoStore({ client, tableName });
  const items = async () => (await client.send(new ScanCommand({ TableName: tableName }))).Items!.map((i) => unmarshall(i));
  return { client, tableName, store, items };
}

describe('policy sets in the store', { timeout: 60_000 }, () => {
  it('the default set always exists (empty until written); other sets exist from their first write', async () => {
    const { store } = await setup();
    const snap = await store.loadPolicy();
    expect(snap).toEqual({ set: 'default', version: '0.0', routes: [], roles: [] });
    expect(await store.getPolicyVersion()).toBe(snap.version);
    expect(await store.loadPolicy('default')).toEqual(snap);
    expect((await store.policy.readSet('default')).exists).toBe(true);
    expect((await store.policy.readSet('staging')).exists).toBe(false);
    // A set nobody wrote loads empty (every request is denied), with a version of its own.
    expect(await store.loadPolicy('staging')).toEqual({ set: 'staging', version: '0.0', routes: [], roles: [] });
  });

  it('a table seeded the old way is the default set without the old admin rules, and its first write moves it for good', async () => {
    const { client, tableName, store, items } = await setup();
    // What `npm start` seeded (admin rules + demo) after an operator replaced one admin rule with their own.
    const mine: RouteRule = { route: 'GET /orgs', resource: 'org', action: 'list', condition: 'principal.emailVerified == true' };
    const seeded = [...OLD_ADMIN_ROUTE_KEYS.filter((k) => k !== 'GET /orgs').map(oldAdminRule), mine, ...DEMO_SEED_ROUTES];
    await writeOldLayout({ client, tableName }, { sk: 'ROUTES', routes: seeded });
    await writeOldLayout({ client, tableName }, { sk: 'GATE', expression: 'principal.kind != "anonymous"' });
    await store.policy.putRole({ name: 'auditors', site: [{ resource: 'audit', action: 'read' }], org: [], member: [], user: [] }, NOW);

    const before = await store.loadPolicy();
    expect(before.routes).toEqual([mine, ...DEMO_SEED_ROUTES]);
    expect(before.gate).toBe('principal.kind != "anonymous"');
    expect(before.roles.map((r) => r.name)).toEqual(['auditors']);
    expect(before.version).toBe('0.3');
    expect(await store.getPolicyVersion()).toBe(before.version);
    const state = await store.policy.readSet('default');
    expect(state).toMatchObject({ exists: true, legacy: true, version: 0, stamp: 'none' });

    // The first write (here: clearing the gate) moves the whole set to its own partition.
    expect(await store.policy.writeSet(state, { gate: null }, NOW, 'root')).toBe(1);
    const after = await store.loadPolicy();
    expect(after.routes).toEqual([mine, ...DEMO_SEED_ROUTES]);
    expect(after.gate).toBeUndefined();
    expect(after.version).toBe('1.3');
    const all = await items();
    expect(all.filter((i) => i.pk === 'POLICY').map((i) => i.sk).sort()).toEqual(['ROLE#SITE#auditors', 'VERSION']);
    expect(all.find((i) => i.pk === 'POLICYSET#default' && i.sk === 'ROUTES')!.routes).toEqual([mine, ...DEMO_SEED_ROUTES]);
    expect(await store.policy.readSet('default')).toMatchObject({ legacy: false, version: 1, stamp: 'live' });
  });

  it('a read of the old layout never writes (the authorizer needs no write access)', async () => {
    const { client, tableName, store, items } = await setup();
    await writeOldLayout({ client, tableName }, { sk: 'ROUTES', routes: OLD_ADMIN_ROUTE_KEYS.map(oldAdminRule) });
    const counter = countRequests(client);
    await store.loadPolicy();
    await store.getPolicyVersion();
    await store.policy.readSet('default');
    expect(counter.commands().every((c) => ['GetItemCommand', 'BatchGetItemCommand', 'QueryCommand'].includes(c))).toBe(true);
    counter.stop();
    expect((await store.loadPolicy()).routes).toEqual([]);
    expect((await items()).find((i) => i.sk === 'ROUTES')!.routes).toHaveLength(OLD_ADMIN_ROUTE_KEYS.length);
  });

  it('a set write moves its own version; a role write moves every set\'s', async () => {
    const { store } = await setup();
    const a0 = await store.getPolicyVersion('staging');
    const d0 = await store.getPolicyVersion('default');
    const staging = await store.policy.readSet('staging');
    await store.policy.writeSet(staging, { routes: [{ route: 'GET /x', resource: 'x', action: 'read' }] }, NOW, 'root');
    expect(await store.getPolicyVersion('staging')).not.toBe(a0);
    expect(await store.getPolicyVersion('default')).toBe(d0);
    const a1 = await store.getPolicyVersion('staging');
    const admin0 = await store.getPolicyVersion('admin');
    await store.policy.putRole({ name: 'x-readers', site: [{ resource: 'x', action: 'read' }], org: [], member: [], user: [] }, NOW);
    expect(await store.getPolicyVersion('staging')).not.toBe(a1);
    expect(await store.getPolicyVersion('default')).not.toBe(d0);
    expect(await store.getPolicyVersion('admin')).not.toBe(admin0);
    // What loadPolicy answers is at the version getPolicyVersion answers.
    for (const set of ['staging', 'default', 'admin']) expect((await store.loadPolicy(set)).version).toBe(await store.getPolicyVersion(set));
    expect((await store.loadPolicy('staging')).roles.map((r) => r.name)).toEqual(['x-readers']);
  });

  it('a stale write is refused by the condition in its own transaction, and changes nothing', async () => {
    const { store } = await setup();
    const base = await store.policy.readSet('staging');
    await store.policy.writeSet(base, { routes: [{ route: 'GET /a', resource: 'a', action: 'read' }] }, NOW, 'one');
    await expect(store.policy.writeSet(base, { routes: [{ route: 'GET /b', resource: 'b', action: 'read' }] }, NOW, 'two')).rejects.toMatchObject({ status: 412, code: 'version-mismatch' });
    expect((await store.loadPolicy('staging')).routes.map((r) => r.route)).toEqual(['GET /a']);
    // The same for a live set, and for a deleted one (its tombstone is a version too).
    const live = await store.policy.readSet('staging');
    await store.policy.writeSet(live, { gate: 'true' }, NOW, 'one');
    await expect(store.policy.writeSet(live, { routes: [] }, NOW, 'two')).rejects.toMatchObject({ status: 412 });
    await expect(store.policy.deleteSet(live, NOW, 'two')).rejects.toMatchObject({ status: 412 });
    const gone = await store.policy.readSet('staging');
    await store.policy.deleteSet(gone, NOW, 'one');
    await expect(store.policy.writeSet(gone, { routes: [] }, NOW, 'two')).rejects.toMatchObject({ status: 412 });
    const tomb = await store.policy.readSet('staging');
    await store.policy.writeSet(tomb, { routes: [] }, NOW, 'one');
    await expect(store.policy.writeSet(tomb, { routes: [{ route: 'GET /c', resource: 'c', action: 'read' }] }, NOW, 'two')).rejects.toMatchObject({ status: 412 });
    expect(await store.loadPolicy('staging')).toMatchObject({ routes: [], version: '4.0' });
  });

  it('the admin set is built in: nothing stored under its name changes it, and it carries the stored roles', async () => {
    const { client, tableName, store } = await setup();
    await client.send(new PutItemCommand({ TableName: tableName, Item: marshall({ pk: 'POLICYSET#admin', sk: 'ROUTES', routes: [{ route: 'GET /me', resource: 'x', action: 'y' }] }) }));
    await store.policy.putRole({ name: 'helpers', site: [{ resource: 'org', action: 'read' }], org: [], member: [], user: [] }, NOW);
    const admin = await store.loadPolicy('admin');
    expect(admin.routes).toEqual(ADMIN_SET_ROUTES);
    expect(admin.gate).toBeUndefined();
    expect(admin.roles.map((r) => r.name)).toEqual(['helpers']);
  });

  it('checks are cheap: one request for a version, three for a snapshot, none for a malformed API id', async () => {
    const { client, store } = await setup();
    await store.policy.putRoutes([{ route: 'GET /x', resource: 'x', action: 'read' }], NOW);
    const counter = countRequests(client);
    await store.getPolicyVersion('default');
    expect(counter.commands()).toEqual(['BatchGetItemCommand']);
    counter.reset();
    await store.loadPolicy('default');
    expect(counter.commands().sort()).toEqual(['BatchGetItemCommand', 'BatchGetItemCommand', 'QueryCommand']);
    counter.reset();
    for (const bad of ['', 'ABCDEFGHIJ', 'abc', 'abcdefghij#', 'abcdefghijk', '../../x']) expect(await store.getApiBinding(bad)).toBeUndefined();
    expect(counter.total()).toBe(0);
    expect(await store.getApiBinding('abcdefghij')).toBeUndefined();
    expect(counter.commands()).toEqual(['GetItemCommand']);
    counter.stop();
  });

  it('bindings: to existing sets only; a bound set cannot be deleted; versions are never reused', async () => {
    const { store } = await setup();
    const unbound = await store.policy.readBinding('abcdefghij');
    await expect(store.policy.putBinding(unbound, 'staging', NOW, 'root')).rejects.toMatchObject({ status: 409, code: 'unknown-set' });
    const v1 = await store.policy.writeSet(await store.policy.readSet('staging'), { routes: [] }, NOW, 'root');
    await store.policy.putBinding(await store.policy.readBinding('abcdefghij'), 'staging', NOW, 'root');
    expect(await store.getApiBinding('abcdefghij')).toBe('staging');
    const bound = await store.policy.readSet('staging');
    expect(bound.bindings).toBe(1);
    await expect(store.policy.deleteSet(bound, NOW, 'root')).rejects.toMatchObject({ status: 409, code: 'set-in-use' });
    // Rebinding to the built-in sets moves the count off `staging`.
    await store.policy.putBinding(await store.policy.readBinding('abcdefghij'), 'default', NOW, 'root');
    expect(await store.getApiBinding('abcdefghij')).toBe('default');
    const free = await store.policy.readSet('staging');
    expect(free.bindings).toBe(0);
    await store.policy.deleteSet(free, NOW, 'root');
    expect(await store.policy.readSet('staging')).toMatchObject({ exists: false, stamp: 'deleted', version: v1 + 1 });
    // Created again, it goes on counting: an ETag of the old set can never match the new one.
    const again = await store.policy.writeSet(await store.policy.readSet('staging'), { routes: [] }, NOW, 'root');
    expect(again).toBe(v1 + 2);
    await store.policy.deleteBinding(await store.policy.readBinding('abcdefghij'), NOW, 'root');
    expect(await store.getApiBinding('abcdefghij')).toBeUndefined();
    expect((await store.policy.readBinding('abcdefghij')).version).toBe(3);
  });

  it('malformed set names are refused before any read', async () => {
    const { client, store } = await setup();
    const counter = countRequests(client);
    for (const bad of ['', 'Default', 'a#b', 'x'.repeat(64), '-x', 'a b', 'ünï']) {
      await expect(store.loadPolicy(bad)).rejects.toMatchObject({ code: 'invalid-set-name' });
      await expect(store.getPolicyVersion(bad)).rejects.toMatchObject({ code: 'invalid-set-name' });
    }
    expect(counter.total()).toBe(0);
    counter.stop();
    expect((await client.send(new GetItemCommand({ TableName: (store.db as { tableName: string }).tableName, Key: marshall({ pk: 'POLICYSET#a#b', sk: 'VERSION' }) }))).Item).toBeUndefined();
  });
});

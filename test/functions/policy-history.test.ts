/**
 * Policy history (DESIGN §9): every write keeps the version it replaces, with who, when,
 * the action and a summary of the change, in the write's own transaction; versions are
 * listed newest first, read whole, and rolled back to (a write like any other: If-Match,
 * tests run, audited). Through the real admin handlers over DynamoDB Local.
 */
import { TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { HISTORY_KEEP } from '../../core/policy/policy-history';
import type { RouteRule } from '../../core/policy/routes';
import { DEMO_SEED_ROUTES } from '../../local/seed-routes';
import { userContext } from '../support/events';
import { adminWorld } from './admin-support';
import { api, DEPLOY, HEALTH, PROJECT, SHOP_TESTS, stored, type W } from './policy-support';

const versionsOf = async (call: ReturnType<typeof api>, set: string, query: Record<string, string> = {}) => (await call('GET', `/policies/sets/${set}/versions`, { query })).body;

describe('history', { timeout: 60_000 }, () => {
  it('every write keeps a version with who, when, the action and a summary; newest first; each readable whole', async () => {
    const w = await adminWorld();
    const call = api(w);
    const start = w.rt.clock.seconds;
    expect((await call('PUT', '/policies/sets/shop', { body: { routes: [HEALTH] }, ifNoneMatch: '*' })).status).toBe(201);
    w.rt.clock.advance(60);
    expect((await call('PATCH', '/policies/sets/shop', { body: { upsert: [PROJECT, DEPLOY] }, ifMatch: '"1"', ctx: userContext('root') })).status).toBe(200);
    w.rt.clock.advance(60);
    const changed = { ...PROJECT, action: 'list' };
    expect((await call('PUT', '/policies/sets/shop', { body: { routes: [changed, HEALTH], gate: 'request.method != "TRACE"', tests: SHOP_TESTS.slice(2, 3) }, ifMatch: '"2"' })).status).toBe(200);

    const list = await versionsOf(call, 'shop');
    expect(list.nextCursor).toBeUndefined();
    expect(list.items).toEqual([
      {
        version: '3', action: 'put', updatedAt: start + 120, updatedBy: 'root', current: true, restoredFrom: null,
        summary: { routes: { added: [], removed: [DEPLOY.route], changed: [changed.route] }, gate: true, tests: { added: ['health is public'], removed: [], changed: [] }, truncated: false },
      },
      {
        version: '2', action: 'patch', updatedAt: start + 60, updatedBy: 'root', current: false, restoredFrom: null,
        summary: { routes: { added: [PROJECT.route, DEPLOY.route], removed: [], changed: [] }, gate: false, tests: { added: [], removed: [], changed: [] }, truncated: false },
      },
      {
        version: '1', action: 'create', updatedAt: start, updatedBy: 'root', current: false, restoredFrom: null,
        summary: { routes: { added: [HEALTH.route], removed: [], changed: [] }, gate: false, tests: { added: [], removed: [], changed: [] }, truncated: false },
      },
    ]);
    const v2 = await call('GET', '/policies/sets/shop/versions/2');
    expect(v2).toMatchObject({ status: 200, body: { ...list.items[1], routes: [HEALTH, PROJECT, DEPLOY], gate: null, tests: [] } });
    expect((await call('GET', '/policies/sets/shop/versions/3')).body).toMatchObject({ routes: [changed, HEALTH], gate: 'request.method != "TRACE"', tests: SHOP_TESTS.slice(2, 3), current: true });
    // What the live set holds and what the history says of its version agree.
    const live = await call('GET', '/policies/sets/shop');
    const v3 = (await call('GET', '/policies/sets/shop/versions/3')).body;
    expect({ routes: v3.routes, gate: v3.gate, tests: v3.tests }).toEqual({ routes: live.body.routes, gate: live.body.gate, tests: live.body.tests });

    for (const [path, status, code] of [
      ['/policies/sets/shop/versions/4', 404, 'version-not-found'],
      ['/policies/sets/shop/versions/0', 404, 'version-not-found'],
      ['/policies/sets/shop/versions/abc', 400, 'invalid-version'],
      ['/policies/sets/shop/versions/-1', 400, 'invalid-version'],
      ['/policies/sets/shop/versions/1e3', 400, 'invalid-version'],
      [`/policies/sets/shop/versions/${'9'.repeat(20)}`, 400, 'invalid-version'],
      ['/policies/sets/nope/versions/1', 404, 'set-not-found'],
      ['/policies/sets/nope/versions', 404, 'set-not-found'],
      ['/policies/sets/Nope/versions', 400, 'invalid-set-name'],
    ] as const) {
      expect(await call('GET', path), path).toMatchObject({ status, body: { error: { code } } });
    }
    // Readers of policies read history; others do not.
    expect((await call('GET', '/policies/sets/shop/versions', { ctx: userContext('auditor') })).status).toBe(200);
    expect((await call('GET', '/policies/sets/shop/versions/1', { ctx: userContext('auditor') })).status).toBe(200);
    for (const path of ['/policies/sets/shop/versions', '/policies/sets/shop/versions/1']) expect((await call('GET', path, { ctx: userContext('ada') })).body.error.code).toBe('cannot-read-policy');
  });

  it('paginates with the listing cursors, and a cursor of one set does not read another', async () => {
    const w = await adminWorld();
    const call = api(w);
    for (const set of ['one', 'two']) {
      await call('PUT', `/policies/sets/${set}`, { body: { routes: [] }, ifNoneMatch: '*' });
      for (let v = 1; v < 5; v++) await call('PUT', `/policies/sets/${set}`, { body: { routes: [{ route: `GET /v${v}`, resource: 'v', action: 'read' }] }, ifMatch: `"${v}"` });
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await versionsOf(call, 'one', { limit: '2', ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((i: { version: string }) => i.version));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['5', '4', '3', '2', '1']);
    const first = await versionsOf(call, 'one', { limit: '2' });
    const foreign = await call('GET', '/policies/sets/two/versions', { query: { cursor: first.nextCursor } });
    expect(foreign).toMatchObject({ status: 400, body: { error: { code: 'invalid-cursor' } } });
    expect((await call('GET', '/policies/sets/one/versions', { query: { cursor: 'junk!' } })).body.error.code).toBe('invalid-cursor');
    expect((await call('GET', '/policies/sets/one/versions', { query: { limit: '500' } })).body.error.code).toBe('invalid-query');
  });

  it('a refused write (412, 422, 400) keeps no history; a deletion does, and a recreated set goes on counting', async () => {
    const w = await adminWorld();
    const call = api(w);
    await call('PUT', '/policies/sets/shop', { body: { routes: [PROJECT, HEALTH], tests: SHOP_TESTS.slice(0, 3) }, ifNoneMatch: '*' });
    expect((await call('PUT', '/policies/sets/shop', { body: { routes: [] }, ifMatch: '"7"' })).status).toBe(412);
    expect((await call('PUT', '/policies/sets/shop', { body: { routes: [HEALTH], tests: SHOP_TESTS.slice(0, 3) }, ifMatch: '"1"' })).status).toBe(422);
    expect((await call('PUT', '/policies/sets/shop', { body: { routes: 'x' }, ifMatch: '"1"' })).status).toBe(400);
    expect((await versionsOf(call, 'shop')).items.map((i: { version: string }) => i.version)).toEqual(['1']);

    expect((await call('DELETE', '/policies/sets/shop', { ifMatch: '"1"' })).status).toBe(204);
    const afterDelete = await versionsOf(call, 'shop');
    expect(afterDelete.items.map((i: { version: string; action: string; current: boolean }) => `${i.version}:${i.action}:${i.current}`)).toEqual(['2:delete:false', '1:create:false']);
    expect(afterDelete.items[0].summary.routes.removed).toEqual([PROJECT.route, HEALTH.route]);
    // What was deleted is still readable, and comes back by a rollback after the set is created again.
    expect((await call('GET', '/policies/sets/shop/versions/1')).body.routes).toEqual([PROJECT, HEALTH]);
    expect((await call('POST', '/policies/sets/shop/rollback', { body: { version: '1' }, ifMatch: '*' })).body.error.code).toBe('set-not-found');
    expect((await call('PUT', '/policies/sets/shop', { body: { routes: [] }, ifNoneMatch: '*' })).headers.etag).toBe('"3"');
    const back = await call('POST', '/policies/sets/shop/rollback', { body: { version: '1' }, ifMatch: '"3"' });
    expect(back).toMatchObject({ status: 200, headers: { etag: '"4"' }, body: { routes: [PROJECT, HEALTH], gate: null, tests: [], version: '4' } });
  });

  it(`keeps the last ${HISTORY_KEEP} versions, pruned in the write's own transaction`, async () => {
    const w = await adminWorld();
    const call = api(w);
    const repo = w.rt.store.policy;
    const now = w.rt.clock.seconds;
    for (let v = 0; v < HISTORY_KEEP + 5; v++) await repo.writeSet(await repo.readSet('busy'), { routes: [{ route: `GET /v${v}`, resource: 'v', action: 'read' }] }, now, 'script');
    const versions: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await versionsOf(call, 'busy', { limit: '100', ...(cursor ? { cursor } : {}) });
      versions.push(...page.items.map((i: { version: string }) => i.version));
      cursor = page.nextCursor;
    } while (cursor);
    expect(versions.length).toBe(HISTORY_KEEP);
    expect(versions[0]).toBe(String(HISTORY_KEEP + 5));
    expect(versions.at(-1)).toBe('6');
    expect((await call('GET', '/policies/sets/busy/versions/5')).body.error.code).toBe('version-not-found');
    // Nothing of a pruned version is left behind (its content items go with it).
    const left = (await w.items()).filter((i) => String(i.pk) === 'POLICYHISTORY#busy');
    expect(left.length).toBeLessThanOrEqual(HISTORY_KEEP * 3);
    expect(left.filter((i) => /#0{0,11}[1-5]$/.test(String(i.sk)))).toEqual([]);
  });

  it('large sets: a history entry holds a route table near the item limit and the tests beside it', async () => {
    const w = await adminWorld();
    const call = api(w);
    await call('PUT', '/policies/sets/fat', { body: { routes: [] }, ifNoneMatch: '*' });
    const long = `principal.id != "${'x'.repeat(1900)}"`;
    const rule = (i: number): RouteRule => ({ route: `GET /r${i}`, resource: 'r', action: 'read', condition: long });
    let n = 0;
    for (;;) {
      const r = await call('PATCH', '/policies/sets/fat', { body: { upsert: Array.from({ length: 25 }, (_, i) => rule(n + i)) }, ifMatch: '*' });
      if (r.status !== 200) {
        expect(r.body.error.code).toBe('policy-too-large');
        break;
      }
      n += 25;
    }
    expect(n).toBeGreaterThan(100);
    const tests = Array.from({ length: 20 }, (_, i) => ({ name: `t${i}`, principal: { kind: 'user', id: 'u', claims: { pad: 'y'.repeat(2500) } }, request: { method: 'GET', path: `/r${i}` }, expect: 'allow' as const }));
    const got = await call('GET', '/policies/sets/fat');
    const put = await call('PUT', '/policies/sets/fat', { body: { routes: [], tests: [] }, ifMatch: got.headers.etag });
    expect(put.status).toBe(200);
    const rolled = await call('POST', '/policies/sets/fat/rollback', { body: { version: JSON.parse(got.headers.etag!) }, ifMatch: put.headers.etag });
    expect(rolled.status, JSON.stringify(rolled.body).slice(0, 200)).toBe(200);
    expect(rolled.body.routes.length).toBe(n);
    // Tests beside the big table: the entry is split over items, each within the limit.
    const full = await w.rt.store.policy.readSet('fat');
    await w.rt.store.policy.writeSet(full, { tests }, w.rt.clock.seconds, 'script');
    const v = (await call('GET', `/policies/sets/fat/versions/${full.version + 1}`)).body;
    expect(v.routes.length).toBe(n);
    expect(v.tests).toEqual(tests);
  }, 120_000);
});

describe('rollback', { timeout: 60_000 }, () => {
  async function shopWithHistory(w: W) {
    const call = api(w);
    await call('PUT', '/policies/sets/shop', { body: { routes: [HEALTH], gate: 'request.method != "TRACE"' }, ifNoneMatch: '*' }); // 1
    await call('PUT', '/policies/sets/shop', { body: { routes: [PROJECT, DEPLOY, HEALTH], tests: SHOP_TESTS }, ifMatch: '"1"' }); // 2
    await call('PATCH', '/policies/sets/shop', { body: { upsert: [{ route: 'GET /status', resource: 'status', action: 'read', public: true }] }, ifMatch: '"2"' }); // 3
    return call;
  }

  it('writes an old version\'s routes and gate back as a new version, keeping the current tests', async () => {
    const w = await adminWorld();
    const call = await shopWithHistory(w);
    expect((await call('POST', '/policies/sets/shop/rollback', { body: { version: '2' } })).status).toBe(428);
    expect((await call('POST', '/policies/sets/shop/rollback', { body: { version: '2' }, ifMatch: '"2"' })).body.error.code).toBe('version-mismatch');
    const res = await call('POST', '/policies/sets/shop/rollback', { body: { version: 2 }, ifMatch: '"3"' });
    expect(res).toMatchObject({ status: 200, headers: { etag: '"4"' }, body: { routes: [PROJECT, DEPLOY, HEALTH], gate: null, tests: SHOP_TESTS, version: '4' } });
    expect((await call('GET', '/policies/sets/shop')).body).toMatchObject({ routes: [PROJECT, DEPLOY, HEALTH], gate: null, tests: SHOP_TESTS });
    const [entry] = (await versionsOf(call, 'shop')).items;
    expect(entry).toMatchObject({ version: '4', action: 'rollback', restoredFrom: '2', updatedBy: 'root', current: true, summary: { routes: { removed: ['GET /status'] } } });
    // Audited like other policy writes: who, which set, which version.
    const audit = (await w.items()).filter((i) => i.type === 'audit' && i.action === 'policy.set.rollback');
    expect(audit.map((a) => `${a.outcome}:${a.target}`)).toEqual(expect.arrayContaining(['allowed:policy-set:shop version:2', 'failed:policy-set:shop version:2']));
  });

  it('is refused (422) when the old version fails the current tests, and writes nothing', async () => {
    const w = await adminWorld();
    const call = await shopWithHistory(w);
    const before = await stored(w);
    const res = await call('POST', '/policies/sets/shop/rollback', { body: { version: '1' }, ifMatch: '"3"' });
    expect(res).toMatchObject({ status: 422, body: { error: { code: 'policy-tests-failed', details: { failed: 1 } } } });
    expect(res.body.error.details.failures[0]).toMatchObject({ name: 'viewer reads a project', actual: { decision: 'deny', code: 'no-route' } });
    expect(await stored(w)).toEqual(before);
  });

  it('refuses what is not a rollback: unknown versions, bad bodies, the admin set, non-admins', async () => {
    const w = await adminWorld();
    const call = await shopWithHistory(w);
    const before = await stored(w);
    for (const [body, status, code] of [
      [{ version: '9' }, 404, 'version-not-found'],
      [{ version: 'latest' }, 400, 'invalid-version'],
      [{ version: -1 }, 400, 'invalid-version'],
      [{ version: 1.5 }, 400, 'invalid-version'],
      [{}, 400, 'invalid-field'],
      [{ version: '1', tests: [] }, 400, 'unknown-field'],
    ] as const) {
      const res = await call('POST', '/policies/sets/shop/rollback', { body, ifMatch: '"3"' });
      expect(res, JSON.stringify(body)).toMatchObject({ status, body: { error: { code } } });
    }
    expect((await call('POST', '/policies/sets/shop/rollback', { body: { version: '1' }, ifMatch: '"3"', ctx: userContext('auditor') })).body.error.code).toBe('cannot-update-policy');
    expect((await call('POST', '/policies/sets/admin/rollback', { body: { version: '1' }, ifMatch: '*' })).body.error.code).toBe('read-only-set');
    expect(await stored(w)).toEqual(before);
    // The admin set is built in: it has no history.
    expect((await call('GET', '/policies/sets/admin/versions')).body).toEqual({ items: [] });
    expect((await call('GET', '/policies/sets/admin/versions/1')).body.error.code).toBe('version-not-found');
  });

  it('the default set in its old layout: its first write keeps the old table as a version to roll back to', async () => {
    const w = await adminWorld();
    const call = api(w);
    const old = ['GET /me', 'POST /orgs'].map((route) => ({ route, resource: 'api', action: 'call', public: true, condition: 'principal.kind != "anonymous"' }));
    await w.rt.store.db.client.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: w.rt.tableName, Item: marshall({ pk: 'POLICY', sk: 'ROUTES', type: 'routes', routes: [...old, ...DEMO_SEED_ROUTES], updatedAt: 1, updatedBy: 'local-seed' }) } },
          { Put: { TableName: w.rt.tableName, Item: marshall({ pk: 'POLICY', sk: 'GATE', type: 'gate', expression: 'true', updatedAt: 1 }) } },
        ],
      }),
    );
    expect((await versionsOf(call, 'default')).items).toEqual([]);
    expect((await call('PUT', '/policies/routes', { body: { routes: [HEALTH] }, ifMatch: '"0"' })).status).toBe(200);
    const list = await versionsOf(call, 'default');
    expect(list.items.map((i: { version: string; action: string }) => `${i.version}:${i.action}`)).toEqual(['1:put-routes', '0:baseline']);
    expect(list.items[1]).toMatchObject({ summary: null, updatedBy: null, updatedAt: null });
    expect((await call('GET', '/policies/sets/default/versions/0')).body).toMatchObject({ routes: DEMO_SEED_ROUTES, gate: 'true' });
    const back = await call('POST', '/policies/sets/default/rollback', { body: { version: '0' }, ifMatch: '"1"' });
    expect(back).toMatchObject({ status: 200, body: { routes: DEMO_SEED_ROUTES, gate: 'true', version: '2' } });
    expect((await call('GET', '/policies/routes')).body.routes).toEqual(DEMO_SEED_ROUTES);
  });

  it('a set written before history existed: its first write keeps the version it replaces', async () => {
    const w = await adminWorld();
    const call = api(w);
    // What a set written before this feature looks like: a stamp and content, no history.
    await w.rt.store.db.client.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: w.rt.tableName, Item: marshall({ pk: 'POLICYSET#legacy', sk: 'VERSION', type: 'policy-set', name: 'legacy', version: 7, updatedAt: 100, updatedBy: 'ops', gsi1pk: 'POLICYSETS', gsi1sk: 'legacy' }) } },
          { Put: { TableName: w.rt.tableName, Item: marshall({ pk: 'POLICYSET#legacy', sk: 'ROUTES', type: 'policy-routes', routes: [HEALTH], updatedAt: 100 }) } },
        ],
      }),
    );
    expect((await call('PATCH', '/policies/sets/legacy', { body: { upsert: [PROJECT] }, ifMatch: '"7"' })).status).toBe(200);
    const list = await versionsOf(call, 'legacy');
    expect(list.items.map((i: { version: string; action: string }) => `${i.version}:${i.action}`)).toEqual(['8:patch', '7:baseline']);
    expect(list.items[1]).toMatchObject({ updatedAt: 100, updatedBy: 'ops', summary: null });
    expect((await call('POST', '/policies/sets/legacy/rollback', { body: { version: '7' }, ifMatch: '"8"' })).body.routes).toEqual([HEALTH]);
  });
});

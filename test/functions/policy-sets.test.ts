import { TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { buildHandlers } from '../../functions/apps';
import type { RouteRule } from '../../core/policy/routes';
import { DEMO_SEED_ROUTES } from '../../local/seed-routes';
import { httpEvent, userContext, type AuthorizerContext } from '../support/events';
import { adminWorld } from './admin-support';

type W = Awaited<ReturnType<typeof adminWorld>>;

const ROUTES: RouteRule[] = [
  { route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'read', org: '{orgId}' },
  { route: 'POST /orgs/{orgId}/deploy', resource: 'deployment', action: 'create', org: '{orgId}', condition: 'request.headers["x-approved"] == "yes"' },
  { route: 'GET /health', resource: 'health', action: 'read', public: true },
];
const root = userContext('root');

/** A call to the admin function with preconditions and a caller (root unless given). */
function api(w: W) {
  return (method: string, path: string, o: { body?: unknown; rawBody?: string; ifMatch?: string; ifNoneMatch?: string; ctx?: AuthorizerContext; headers?: Record<string, string> } = {}) =>
    w.call(
      httpEvent(method, path, {
        ...(o.body !== undefined ? { body: o.body } : {}),
        ...(o.rawBody !== undefined ? { rawBody: o.rawBody } : {}),
        context: o.ctx ?? root,
        headers: { ...(o.ifMatch !== undefined ? { 'if-match': o.ifMatch } : {}), ...(o.ifNoneMatch !== undefined ? { 'if-none-match': o.ifNoneMatch } : {}), ...o.headers },
      }),
    );
}

const OLD_ADMIN_RULES: RouteRule[] = ['GET /me', 'POST /orgs', 'GET /orgs/{orgId}', 'DELETE /orgs/{orgId}', 'GET /policies/routes', 'PUT /policies/routes'].map((route) => ({
  route, resource: 'api', action: 'call', public: true, condition: 'principal.kind != "anonymous"',
}));

/** The route table as `npm start` / `bootstrap-admin` stored it before policy sets (old layout). */
async function seedOldLayout(w: W, routes: RouteRule[]) {
  await w.rt.store.db.client.send(
    new TransactWriteItemsCommand({
      TransactItems: [
        { Put: { TableName: w.rt.tableName, Item: marshall({ pk: 'POLICY', sk: 'ROUTES', type: 'routes', routes, updatedAt: 1, updatedBy: 'local-seed' }) } },
        { Update: { TableName: w.rt.tableName, Key: marshall({ pk: 'POLICY', sk: 'VERSION' }), UpdateExpression: 'ADD #v :one', ExpressionAttributeNames: { '#v': 'version' }, ExpressionAttributeValues: marshall({ ':one': 1 }) } },
      ],
    }),
  );
}

describe('the default set under its old names: ETags, preconditions, round-trips', { timeout: 60_000 }, () => {
  it('GET answers an ETag; a PUT needs If-Match (428 without), moves the version, and takes what GET answered', async () => {
    const w = await adminWorld();
    const call = api(w);
    const empty = await call('GET', '/policies/routes');
    expect(empty).toMatchObject({ status: 200, headers: { etag: '"0"' }, body: { routes: [], version: '0', warnings: [] } });

    const blind = await call('PUT', '/policies/routes', { body: { routes: ROUTES } });
    expect(blind).toMatchObject({ status: 428, body: { error: { code: 'precondition-required' } } });
    expect((await call('GET', '/policies/routes')).body.routes).toEqual([]);

    const put = await call('PUT', '/policies/routes', { body: { routes: ROUTES }, ifMatch: '"0"' });
    expect(put).toMatchObject({ status: 200, headers: { etag: '"1"' }, body: { version: '1' } });
    // Warnings stay in the PUT answer (and in the GET's).
    expect(put.body.warnings).toEqual([expect.objectContaining({ route: 'POST /orgs/{orgId}/deploy', code: 'condition-not-cacheable' })]);

    // What GET answers (version and warnings included) is valid input for the PUT.
    const got = await call('GET', '/policies/routes');
    expect(got.headers.etag).toBe('"1"');
    const again = await call('PUT', '/policies/routes', { body: got.body, ifMatch: got.headers.etag });
    expect(again).toMatchObject({ status: 200, headers: { etag: '"2"' } });
    expect(again.body.routes).toEqual(ROUTES);

    // The gate is part of the same set: one version for both.
    const gate = await call('GET', '/policies/gate');
    expect(gate).toMatchObject({ status: 200, headers: { etag: '"2"' }, body: { expression: null, version: '2', warnings: [] } });
    const timed = await call('PUT', '/policies/gate', { body: { ...gate.body, expression: 'now > 0' }, ifMatch: gate.headers.etag });
    expect(timed).toMatchObject({ status: 200, headers: { etag: '"3"' }, body: { expression: 'now > 0', warnings: [expect.objectContaining({ route: 'gate', code: 'condition-time-dependent' })] } });
    expect((await call('PUT', '/policies/routes', { body: got.body, ifMatch: '"2"' })).status).toBe(412);
  });

  it('every policy endpoint: what GET answers, PUT takes back unchanged', async () => {
    const w = await adminWorld();
    const call = api(w);
    expect((await call('PUT', '/policies/sets/staging', { body: { routes: ROUTES, gate: 'principal.emailVerified == true', tests: [{ name: 'health is public', principal: { kind: 'anonymous' }, request: { method: 'GET', path: '/health' }, expect: 'allow' }] }, ifNoneMatch: '*' })).status).toBe(201);
    expect((await call('PUT', '/policies/apis/abcdefghij', { body: { set: 'staging' }, ifNoneMatch: '*' })).status).toBe(201);
    expect((await call('PUT', '/policies/gate', { body: { expression: 'true' }, ifMatch: '*' })).status).toBe(200);
    for (const path of ['/policies/routes', '/policies/gate', '/policies/sets/default', '/policies/sets/staging', '/policies/apis/abcdefghij']) {
      const got = await call('GET', path);
      expect(got.status, path).toBe(200);
      expect(got.headers.etag, path).toMatch(/^"\d+"$/);
      const put = await call('PUT', path, { body: got.body, ifMatch: got.headers.etag });
      expect(put.status, `${path}: ${JSON.stringify(put.body)}`).toBe(200);
      const after = await call('GET', path);
      expect({ ...after.body, version: 'v' }, path).toEqual({ ...got.body, version: 'v' });
      expect(Number(JSON.parse(after.headers.etag!))).toBe(Number(JSON.parse(got.headers.etag!)) + 1);
    }
  });
});

describe('safe edits', { timeout: 60_000 }, () => {
  it('a stale If-Match is 412 version-mismatch and writes nothing', async () => {
    const w = await adminWorld();
    const call = api(w);
    await call('PUT', '/policies/sets/default', { body: { routes: ROUTES }, ifMatch: '"0"' });
    for (const [method, path, body] of [
      ['PUT', '/policies/sets/default', { routes: [] }],
      ['PATCH', '/policies/sets/default', { remove: ['GET /health'] }],
      ['PUT', '/policies/routes', { routes: [] }],
      ['PUT', '/policies/gate', { expression: 'false' }],
    ] as const) {
      const res = await call(method, path, { body, ifMatch: '"0"' });
      expect(res, `${method} ${path}`).toMatchObject({ status: 412, body: { error: { code: 'version-mismatch' } } });
    }
    const now = await call('GET', '/policies/sets/default');
    expect(now.body).toMatchObject({ routes: ROUTES, gate: null, version: '1' });
  });

  it('two writers with the same If-Match: exactly one wins, the other gets 412', async () => {
    const w = await adminWorld();
    const call = api(w);
    const a: RouteRule[] = [{ route: 'GET /a', resource: 'a', action: 'read' }];
    const b: RouteRule[] = [{ route: 'GET /b', resource: 'b', action: 'read' }];
    for (let round = 0; round < 3; round++) {
      const tag = (await call('GET', '/policies/sets/default')).headers.etag;
      const [ra, rb] = await Promise.all([
        call('PUT', '/policies/sets/default', { body: { routes: a }, ifMatch: tag }),
        call('PUT', '/policies/routes', { body: { routes: b }, ifMatch: tag }),
      ]);
      expect([ra.status, rb.status].sort(), `round ${round}`).toEqual([200, 412]);
      const winner = ra.status === 200 ? a : b;
      expect((await call('GET', '/policies/routes')).body.routes).toEqual(winner);
    }
    // Routes and gate are one set: a gate write and a PATCH on the same version race too.
    const tag = (await call('GET', '/policies/gate')).headers.etag;
    const res = await Promise.all([
      call('PUT', '/policies/gate', { body: { expression: 'true' }, ifMatch: tag }),
      call('PATCH', '/policies/sets/default', { body: { upsert: b }, ifMatch: tag }),
    ]);
    expect(res.map((r) => r.status).sort()).toEqual([200, 412]);
    expect(res.find((r) => r.status === 412)!.body.error.code).toBe('version-mismatch');
  });

  it('If-Match: * overwrites on purpose; If-None-Match: * creates only; malformed preconditions are 400', async () => {
    const w = await adminWorld();
    const call = api(w);
    expect((await call('PUT', '/policies/sets/qa', { body: { routes: [] }, ifMatch: '*' })).body.error.code).toBe('version-mismatch');
    const created = await call('PUT', '/policies/sets/qa', { body: { routes: [] }, ifNoneMatch: '*' });
    expect(created).toMatchObject({ status: 201, headers: { etag: '"1"', location: '/policies/sets/qa' } });
    expect((await call('PUT', '/policies/sets/qa', { body: { routes: [] }, ifNoneMatch: '*' })).body.error.code).toBe('already-exists');
    expect((await call('PUT', '/policies/sets/default', { body: { routes: [] }, ifNoneMatch: '*' })).status).toBe(412);
    expect((await call('PUT', '/policies/sets/qa', { body: { routes: ROUTES }, ifMatch: '*' })).status).toBe(200);
    // A list of tags matches any of them; weak tags and tags we never issue never match.
    expect((await call('PUT', '/policies/sets/qa', { body: { routes: [] }, ifMatch: '"7", "2"' })).status).toBe(200);
    for (const tag of ['W/"3"', '"abc"', '"03"', '"-3"']) expect((await call('PUT', '/policies/sets/qa', { body: { routes: [] }, ifMatch: tag })).status, tag).toBe(412);
    for (const [header, value, code] of [
      ['if-match', '3', 'invalid-if-match'],
      ['if-match', '"3" junk', 'invalid-if-match'],
      ['if-match', '"3",', 'invalid-if-match'],
      ['if-match', '"a b"', 'invalid-if-match'],
      ['if-match', '', 'invalid-if-match'],
      ['if-match', `"${'9'.repeat(2000)}"`, 'invalid-if-match'],
      ['if-match', Array.from({ length: 30 }, (_, i) => `"${i}"`).join(','), 'invalid-if-match'],
      ['if-none-match', '"3"', 'invalid-if-none-match'],
    ] as const) {
      const res = await call('PUT', '/policies/sets/qa', { body: { routes: [] }, headers: { [header]: value } });
      expect(res, `${header}: ${value.slice(0, 40)}`).toMatchObject({ status: 400, body: { error: { code } } });
    }
    expect((await call('PUT', '/policies/sets/qa', { body: { routes: [] }, ifMatch: '"3"', ifNoneMatch: '*' })).body.error.code).toBe('invalid-precondition');
    expect((await call('GET', '/policies/sets/qa')).headers.etag).toBe('"3"');
  });
});

describe('policy sets', { timeout: 60_000 }, () => {
  it('create, list, read, replace and delete; versions are never reused', async () => {
    const w = await adminWorld();
    const call = api(w);
    expect((await call('GET', '/policies/sets/staging')).body.error.code).toBe('set-not-found');
    const tests = [{ name: 'viewers read projects', principal: { kind: 'user', id: 'vic', orgs: { acme: ['org-viewer'] } }, request: { method: 'GET', path: '/orgs/acme/projects/p1' }, expect: { decision: 'allow', code: 'allow' } }];
    const created = await call('PUT', '/policies/sets/staging', { body: { routes: ROUTES, tests }, ifNoneMatch: '*' });
    expect(created).toMatchObject({ status: 201, body: { routes: ROUTES, gate: null, tests, version: '1' } });
    const list = await call('GET', '/policies/sets');
    expect(list.status).toBe(200);
    expect(list.headers.etag).toMatch(/^W\/"/);
    expect(list.body.items).toEqual([
      expect.objectContaining({ name: 'admin', builtIn: true, readOnly: true }),
      expect.objectContaining({ name: 'default', version: '0', builtIn: true, readOnly: false }),
      expect.objectContaining({ name: 'staging', version: '1', builtIn: false, bindings: 0, updatedBy: 'root' }),
    ]);
    // PUT replaces the whole set: what is left out (gate, tests) is cleared.
    const replaced = await call('PUT', '/policies/sets/staging', { body: { routes: [] }, ifMatch: '"1"' });
    expect(replaced.body).toMatchObject({ routes: [], tests: [], version: '2' });
    expect((await call('DELETE', '/policies/sets/staging')).status).toBe(428);
    expect((await call('DELETE', '/policies/sets/staging', { ifMatch: '"1"' })).status).toBe(412);
    expect((await call('DELETE', '/policies/sets/staging', { ifMatch: '"2"' })).status).toBe(204);
    expect((await call('GET', '/policies/sets/staging')).status).toBe(404);
    expect((await call('DELETE', '/policies/sets/staging', { ifMatch: '*' })).status).toBe(404);
    expect((await call('GET', '/policies/sets')).body.items.map((s: { name: string }) => s.name)).toEqual(['admin', 'default']);
    // Created again, it goes on counting: the old ETag "1" can never match it.
    const again = await call('PUT', '/policies/sets/staging', { body: { routes: [] }, ifNoneMatch: '*' });
    expect(again).toMatchObject({ status: 201, headers: { etag: '"4"' } });
  });

  it('admin is read-only and default cannot be deleted (409 with stable codes)', async () => {
    const w = await adminWorld();
    const call = api(w);
    const admin = await call('GET', '/policies/sets/admin');
    expect(admin.status).toBe(200);
    expect(admin.headers.etag).toMatch(/^"builtin-[0-9a-f]{12}"$/);
    expect(admin.body.routes.find((r: RouteRule) => r.route === 'PUT /policies/routes')).toEqual({ route: 'PUT /policies/routes', resource: 'policy', action: 'update' });
    for (const [method, body] of [['PUT', admin.body], ['PATCH', { remove: ['GET /me'] }], ['DELETE', undefined]] as const) {
      const res = await call(method, '/policies/sets/admin', { ...(body ? { body } : {}), ifMatch: admin.headers.etag });
      expect(res, method).toMatchObject({ status: 409, body: { error: { code: 'read-only-set' } } });
    }
    expect((await call('DELETE', '/policies/sets/default', { ifMatch: '*' })).body.error).toMatchObject({ code: 'set-not-deletable' });
    // The admin set's body is the shape of any set: it can seed another set.
    expect((await call('PUT', '/policies/sets/admin-copy', { body: admin.body, ifNoneMatch: '*' })).status).toBe(201);
  });

  it('PATCH edits rules by route shape without resending the table', async () => {
    const w = await adminWorld();
    const call = api(w);
    await call('PUT', '/policies/sets/edge', { body: { routes: ROUTES }, ifNoneMatch: '*' });
    // Same shape, other parameter names: replaces the rule where it stands. A new shape is appended.
    const renamed: RouteRule = { route: 'GET /orgs/{o}/projects/{p}', resource: 'project', action: 'list', org: '{o}' };
    const added: RouteRule = { route: 'GET /version', resource: 'version', action: 'read', public: true };
    const res = await call('PATCH', '/policies/sets/edge', { body: { upsert: [renamed, added], remove: ['GET /health'] }, ifMatch: '"1"' });
    expect(res).toMatchObject({ status: 200, headers: { etag: '"2"' } });
    expect(res.body.routes).toEqual([renamed, ROUTES[1], added]);
    expect((await call('GET', '/policies/sets/edge')).body.routes).toEqual([renamed, ROUTES[1], added]);
    // The gate alone.
    expect((await call('PATCH', '/policies/sets/edge', { body: { gate: 'principal.emailVerified == true' }, ifMatch: '"2"' })).body).toMatchObject({ gate: 'principal.emailVerified == true', routes: [renamed, ROUTES[1], added] });
    // Refused edits change nothing.
    for (const [body, status, code] of [
      [{ remove: ['GET /health'] }, 409, 'route-not-found'],
      [{ upsert: [added], remove: ['GET /version'] }, 400, 'invalid-patch'],
      [{}, 400, 'invalid-patch'],
      [{ upsert: [added, added] }, 400, 'duplicate-route'],
      [{ upsert: [{ route: 'GET x', resource: 'x', action: 'read' }] }, 400, 'invalid-route'],
      [{ upsert: [{ route: 'GET /x', resource: 'x', action: 'read', condition: 'principal.constructor' }] }, 400, 'invalid-expression'],
      [{ remove: ['nope'] }, 400, 'invalid-route'],
      [{ remove: 'GET /version' }, 400, 'invalid-field'],
      [{ replace: [] }, 400, 'unknown-field'],
    ] as const) {
      const r = await call('PATCH', '/policies/sets/edge', { body, ifMatch: '"3"' });
      expect(r, JSON.stringify(body)).toMatchObject({ status, body: { error: { code } } });
    }
    const bad = await call('PATCH', '/policies/sets/edge', { body: { upsert: [{ route: 'GET x', resource: 'x', action: 'read' }] }, ifMatch: '"3"' });
    expect(bad.body.error.message).toMatch(/^upsert\[0\]/);
    expect((await call('GET', '/policies/sets/edge')).headers.etag).toBe('"3"');
    expect((await call('PATCH', '/policies/sets/nope', { body: { remove: ['GET /x'] }, ifMatch: '*' })).status).toBe(404);
  });

  it('a customer route like DELETE /orgs/{orgId} is just a route of the default set, even in a table seeded the old way', async () => {
    const w = await adminWorld();
    const call = api(w);
    await seedOldLayout(w, [...OLD_ADMIN_RULES, ...DEMO_SEED_ROUTES]);
    const got = await call('GET', '/policies/routes');
    expect(got).toMatchObject({ status: 200, headers: { etag: '"0"' } });
    expect(got.body.routes).toEqual(DEMO_SEED_ROUTES);
    const mine: RouteRule = { route: 'DELETE /orgs/{orgId}', resource: 'tenant', action: 'delete', org: '{orgId}' };
    const put = await call('PUT', '/policies/routes', { body: { routes: [...got.body.routes, mine] }, ifMatch: got.headers.etag });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect((await call('GET', '/policies/routes')).body.routes).toEqual([...DEMO_SEED_ROUTES, mine]);
    // The first write moved the set out of the old layout (and the old admin copies with it).
    expect((await w.items()).filter((i) => i.pk === 'POLICY' && (i.sk === 'ROUTES' || i.sk === 'GATE'))).toEqual([]);
    // The admin API's own rule for that shape is untouched.
    expect((await w.rt.store.loadPolicy('admin')).routes.find((r) => r.route === 'DELETE /orgs/{orgId}')).toEqual({ route: 'DELETE /orgs/{orgId}', resource: 'org', action: 'delete', org: '{orgId}' });
  });
});

describe('API bindings', { timeout: 60_000 }, () => {
  it('bind to an existing set; a bound set cannot be deleted; unbind', async () => {
    const w = await adminWorld();
    const call = api(w);
    expect((await call('PUT', '/policies/apis/abcdefghij', { body: { set: 'staging' }, ifNoneMatch: '*' })).body.error.code).toBe('unknown-set');
    await call('PUT', '/policies/sets/staging', { body: { routes: ROUTES }, ifNoneMatch: '*' });
    expect((await call('PUT', '/policies/apis/abcdefghij', { body: { set: 'staging' } })).status).toBe(428);
    const bound = await call('PUT', '/policies/apis/abcdefghij', { body: { set: 'staging' }, ifNoneMatch: '*' });
    expect(bound).toMatchObject({ status: 201, headers: { etag: '"1"', location: '/policies/apis/abcdefghij' }, body: { apiId: 'abcdefghij', set: 'staging', version: '1' } });
    expect(await w.rt.store.getApiBinding('abcdefghij')).toBe('staging');
    expect((await call('GET', '/policies/apis/abcdefghij')).body).toEqual({ apiId: 'abcdefghij', set: 'staging', version: '1' });
    expect((await call('PUT', '/policies/apis/k0k0k0k0k0', { body: { set: 'admin' }, ifNoneMatch: '*' })).status).toBe(201);
    const list = await call('GET', '/policies/apis');
    expect(list.body.items.map((b: { apiId: string; set: string }) => `${b.apiId}:${b.set}`)).toEqual(['abcdefghij:staging', 'k0k0k0k0k0:admin']);
    expect((await call('GET', '/policies/sets')).body.items.find((s: { name: string }) => s.name === 'staging').bindings).toBe(1);

    const del = await call('DELETE', '/policies/sets/staging', { ifMatch: '"1"' });
    expect(del).toMatchObject({ status: 409, body: { error: { code: 'set-in-use' } } });
    expect(del.body.error.message).toContain('abcdefghij');
    expect((await call('PUT', '/policies/apis/abcdefghij', { body: { set: 'default', apiId: 'zzzzzzzzzz' }, ifMatch: '"1"' })).body.error.code).toBe('invalid-field');
    expect((await call('PUT', '/policies/apis/abcdefghij', { body: { set: 'default' }, ifMatch: '"1"' })).status).toBe(200);
    expect((await call('DELETE', '/policies/sets/staging', { ifMatch: '"1"' })).status).toBe(204);
    expect((await call('DELETE', '/policies/apis/abcdefghij')).status).toBe(428);
    expect((await call('DELETE', '/policies/apis/abcdefghij', { ifMatch: '"1"' })).status).toBe(412);
    expect((await call('DELETE', '/policies/apis/abcdefghij', { ifMatch: '"2"' })).status).toBe(204);
    expect((await call('GET', '/policies/apis/abcdefghij')).body.error.code).toBe('binding-not-found');
    expect(await w.rt.store.getApiBinding('abcdefghij')).toBeUndefined();
  });
});

describe('hostile input: 400 with stable codes, never a 500, nothing written', { timeout: 60_000 }, () => {
  it('bad set names, bad API ids, bad bodies', async () => {
    const w = await adminWorld();
    const call = api(w);
    await call('PUT', '/policies/sets/ok', { body: { routes: [] }, ifNoneMatch: '*' });
    const before = await w.items();
    for (const name of ['Bad', 'a_b', `a${'z'.repeat(63)}`, '%2e%2e', 'a%23b', '-a', '1a', 'a%20b', '%C3%BC']) {
      for (const method of ['GET', 'PUT', 'PATCH', 'DELETE']) {
        const res = await call(method, `/policies/sets/${name}`, { body: method === 'PATCH' ? { remove: ['GET /x'] } : { routes: [] }, ifMatch: '*' });
        expect(res, `${method} ${name}`).toMatchObject({ status: 400, body: { error: { code: 'invalid-set-name' } } });
      }
    }
    // A slash in the id is no route at all (404 from the router, never a 500).
    for (const p of ['abcdefghi%2F', '%00abcdefghi']) expect((await call('GET', `/policies/apis/${p}`)).body.error.code).toBe('route-not-found');
    for (const apiId of ['short', 'ABCDEFGHIJ', 'abcdefghijk', 'abcdefghi-', 'abcdefgh%C3%A9', 'abcdefghi%20']) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await call(method, `/policies/apis/${apiId}`, { body: { set: 'ok' }, ifMatch: '*' });
        expect(res, `${method} ${apiId}`).toMatchObject({ status: 400, body: { error: { code: 'invalid-api-id' } } });
      }
    }
    for (const [path, body, code] of [
      ['/policies/sets/ok', { routes: 'all' }, 'invalid-field'],
      ['/policies/sets/ok', { routes: [], gate: 5 }, 'invalid-field'],
      ['/policies/sets/ok', { routes: [], gate: 'principal.constructor' }, 'invalid-expression'],
      ['/policies/sets/ok', { routes: [], extra: 1 }, 'unknown-field'],
      ['/policies/sets/ok', { routes: [], tests: {} }, 'invalid-field'],
      ['/policies/sets/ok', { routes: [], tests: [{ name: 'x', principal: {}, request: { method: 'get', path: '/x' }, expect: 'allow' }] }, 'invalid-tests'],
      ['/policies/sets/ok', { routes: [], tests: [{ name: 'x', principal: {}, request: { method: 'GET', path: '/x' }, expect: 'maybe' }] }, 'invalid-tests'],
      ['/policies/sets/ok', { routes: [], tests: [{ name: 'x', principal: {}, request: { method: 'GET', path: '/x' }, expect: 'allow', extra: 1 }] }, 'invalid-tests'],
      ['/policies/sets/ok', { routes: [], tests: Array.from({ length: 201 }, (_, i) => ({ name: `t${i}`, principal: {}, request: { method: 'GET', path: '/' }, expect: 'deny' })) }, 'invalid-tests'],
      ['/policies/sets/ok', null, 'invalid-field'],
      ['/policies/sets/ok', [], 'invalid-field'],
      ['/policies/apis/abcdefghij', { set: 'Nope' }, 'invalid-set-name'],
      ['/policies/apis/abcdefghij', { set: 5 }, 'invalid-field'],
      ['/policies/routes', { routes: [{ route: 'GET /x', resource: 'x', action: 'read', org: 'BAD ORG!' }] }, 'invalid-route'],
      ['/policies/gate', { expression: 5 }, 'invalid-field'],
    ] as const) {
      const res = await call('PUT', path, { body, ifMatch: '*' });
      expect(res, `${path} ${JSON.stringify(body).slice(0, 80)}`).toMatchObject({ status: 400, body: { error: { code } } });
    }
    expect((await call('PUT', '/policies/sets/ok', { rawBody: '{"routes": [', ifMatch: '*' })).body.error.code).toBe('invalid-json');
    const after = (await w.items()).filter((i) => i.type !== 'audit');
    expect(after).toEqual(before.filter((i) => i.type !== 'audit'));
    // Test payloads are free-form JSON: nothing in them may reach DynamoDB's own limits
    // (nesting, number range) and come back as a 5xx.
    let deep: Record<string, unknown> = { x: 1 };
    for (let i = 0; i < 40; i++) deep = { a: deep };
    const withPrincipal = (principal: string) => `{"routes":[],"tests":[{"name":"t","principal":${principal},"request":{"method":"GET","path":"/x"},"expect":"deny"}]}`;
    for (const [principal, status] of [[JSON.stringify(deep), 400], ['{"n":1e400}', 400], ['{"kind":"user","id":"u","claims":{"n":123456789012345678901234567890,"s":"","l":[[],{}]}}', 200]] as const) {
      const res = await call('PUT', '/policies/sets/ok', { rawBody: withPrincipal(principal), ifMatch: '*' });
      expect(res, principal.slice(0, 40)).toMatchObject({ status, ...(status === 400 ? { body: { error: { code: 'invalid-tests' } } } : {}) });
    }
    expect((await call('GET', '/policies/sets/ok')).body.tests[0].principal).toEqual({ kind: 'user', id: 'u', claims: { n: 123456789012345678901234567890, s: '', l: [[], {}] } });
  });

  it('huge tables: over the body limit, over 2000 routes, over what one item can hold', async () => {
    const w = await adminWorld();
    const call = api(w);
    await call('PUT', '/policies/sets/big', { body: { routes: [] }, ifNoneMatch: '*' });
    const rule = (i: number, condition?: string): RouteRule => ({ route: `GET /r${i}`, resource: 'r', action: 'read', ...(condition ? { condition } : {}) });
    const huge = Array.from({ length: 3000 }, (_, i) => rule(i));
    expect((await call('PUT', '/policies/sets/big', { body: { routes: huge }, ifMatch: '*' })).body.error.code).toBe('body-too-large');
    // 2000 routes at most, reached by per-rule edits.
    for (let start = 0; start < 2000; start += 1000) {
      const r = await call('PATCH', '/policies/sets/big', { body: { upsert: Array.from({ length: 1000 }, (_, i) => rule(start + i)) }, ifMatch: '*' });
      expect(r.status, JSON.stringify(r.body).slice(0, 200)).toBe(200);
    }
    const over = await call('PATCH', '/policies/sets/big', { body: { upsert: [rule(2000)] }, ifMatch: '*' });
    expect(over).toMatchObject({ status: 400, body: { error: { code: 'invalid-routes' } } });
    // What one DynamoDB item can hold: long conditions reach it before 2000 routes do.
    await call('PUT', '/policies/sets/fat', { body: { routes: [] }, ifNoneMatch: '*' });
    const long = `principal.id != "${'x'.repeat(1900)}"`;
    let code: string | undefined;
    for (let start = 0; start < 400 && !code; start += 25) {
      const r = await call('PATCH', '/policies/sets/fat', { body: { upsert: Array.from({ length: 25 }, (_, i) => rule(start + i, long)) }, ifMatch: '*' });
      if (r.status !== 200) {
        expect(r.status).toBe(400);
        code = r.body.error.code;
      }
    }
    expect(code).toBe('policy-too-large');
    const fat = await call('GET', '/policies/sets/fat');
    expect(fat.status).toBe(200);
    expect(fat.body.routes.length).toBeGreaterThan(100);
  }, 60_000);
});

describe('permissions, audit, Location', { timeout: 60_000 }, () => {
  it('reads need policy:read/list at site level, writes policy:update/delete; every write is audited with who and which set', async () => {
    const w = await adminWorld();
    const call = api(w);
    await call('PUT', '/policies/sets/audited', { body: { routes: [] }, ifNoneMatch: '*' });
    for (const path of ['/policies/sets', '/policies/sets/audited', '/policies/apis', '/policies/routes', '/policies/gate']) {
      expect((await call('GET', path, { ctx: userContext('auditor') })).status, path).toBe(200);
      expect((await call('GET', path, { ctx: userContext('ada') })).status, path).toBe(403);
    }
    const writes: [string, string, unknown, string][] = [
      ['PUT', '/policies/sets/audited', { routes: [] }, 'policy.set.put'],
      ['PATCH', '/policies/sets/audited', { upsert: [ROUTES[2]] }, 'policy.set.patch'],
      ['PUT', '/policies/apis/abcdefghij', { set: 'audited' }, 'policy.binding.put'],
      ['DELETE', '/policies/apis/abcdefghij', undefined, 'policy.binding.delete'],
      ['DELETE', '/policies/sets/audited', undefined, 'policy.set.delete'],
      ['PUT', '/policies/routes', { routes: [] }, 'policy.routes.put'],
      ['PUT', '/policies/gate', { expression: null }, 'policy.gate.put'],
    ];
    for (const [method, path, body] of writes) {
      const denied = await call(method, path, { ...(body ? { body } : {}), ctx: userContext('auditor'), ifMatch: '*' });
      expect(denied, `${method} ${path}`).toMatchObject({ status: 403 });
      const ok = await call(method, path, { ...(body ? { body } : {}), ...(path.startsWith('/policies/apis') && method === 'PUT' ? { ifNoneMatch: '*' } : { ifMatch: '*' }) });
      expect([200, 201, 204], `${method} ${path}: ${JSON.stringify(ok.body)}`).toContain(ok.status);
    }
    const stale = await call('PUT', '/policies/routes', { body: { routes: [] }, ifMatch: '"0"' });
    expect(stale.status).toBe(412);
    const records = (await w.items()).filter((i) => i.type === 'audit');
    for (const [, path, , action] of writes) {
      const mine = records.filter((r) => r.action === action);
      expect(mine.map((r) => `${r.actor}:${r.outcome}`).sort(), action).toEqual(expect.arrayContaining(['auditor:denied', 'root:allowed']));
      const where = path.startsWith('/policies/apis') ? 'api:abcdefghij' : path.startsWith('/policies/sets') ? 'policy-set:audited' : 'policy-set:default';
      for (const r of mine) expect(r.target, action).toContain(where);
    }
    expect(records.find((r) => r.action === 'policy.binding.put' && r.outcome === 'allowed')!.target).toBe('api:abcdefghij set:audited');
    expect(records.find((r) => r.action === 'policy.routes.put' && r.outcome === 'failed')).toMatchObject({ actor: 'root', reason: 'version-mismatch', target: 'policy-set:default/routes' });
  });

  it('201 answers carry a Location where the resource has a GET URL, behind a named stage too', async () => {
    const w = await adminWorld();
    const h = buildHandlers(w.rt);
    const org = await h.admin(httpEvent('POST', '/orgs', { body: { id: 'initech', name: 'Initech' }, context: root }));
    expect(org.statusCode).toBe(201);
    expect(org.headers.location).toBe('/orgs/initech');
    const token = await h.tokens(httpEvent('POST', '/tokens', { body: { name: 'laptop' }, context: root }));
    expect(token.headers.location).toBe(`/tokens/${JSON.parse(token.body).id}`);
    const site = await h.tokens(httpEvent('POST', '/site/tokens', { body: { name: 'ci' }, context: root }));
    expect(site.headers.location).toBe(`/tokens/${JSON.parse(site.body).id}`);
    expect((await h.tokens(httpEvent('GET', site.headers.location!, { context: root }))).statusCode).toBe(200);
    const staged = httpEvent('POST', '/prod/orgs', { body: { id: 'umbrella', name: 'Umbrella' }, context: root });
    staged.requestContext!.stage = 'prod';
    expect((await h.admin(staged)).headers.location).toBe('/prod/orgs/umbrella');
    // No GET URL, no Location (an invitation is read through its org's listing).
    const inv = await h.invitations(httpEvent('POST', '/orgs/acme/invitations', { body: { email: 'new@example.com', role: 'org-member' }, context: root }));
    expect(inv.statusCode).toBe(201);
    expect(inv.headers.location).toBeUndefined();
  });
});

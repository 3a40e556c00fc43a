/**
 * Policy tests run on every write of a set (DESIGN §9): through the real admin handlers
 * over DynamoDB Local, a write whose version fails one of the set's tests (as they will
 * be after the write) is a 422 `policy-tests-failed` listing every failure, and nothing
 * is written; `POST /policies/sets/{set}/test` runs the stored or a candidate's tests
 * without writing.
 */
import { describe, expect, it } from 'vitest';
import { userContext } from '../support/events';
import { adminWorld } from './admin-support';
import { api, DEPLOY, HEALTH, PROJECT, SHOP_TESTS, stored } from './policy-support';

describe('every write runs the set\'s tests', { timeout: 60_000 }, () => {
  it('a write that breaks a stored test is refused with 422, listing each failure, and changes nothing', async () => {
    const w = await adminWorld();
    const call = api(w);
    const created = await call('PUT', '/policies/sets/shop', { body: { routes: [PROJECT, DEPLOY, HEALTH], tests: SHOP_TESTS }, ifNoneMatch: '*' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const before = await stored(w);

    // The whole table without the project route: the viewer's read now has no route.
    const put = await call('PUT', '/policies/sets/shop', { body: { routes: [DEPLOY, HEALTH], tests: SHOP_TESTS }, ifMatch: '"1"' });
    expect(put).toMatchObject({ status: 422, body: { error: { code: 'policy-tests-failed' } } });
    expect(put.body.error.message).toContain('viewer reads a project');
    expect(put.body.error.details).toEqual({
      passed: 3,
      failed: 1,
      failures: [{ name: 'viewer reads a project', expected: { decision: 'allow' }, actual: { decision: 'deny', code: 'no-route' } }],
    });

    // The same through per-rule edits: a removal, and a gate that shuts everyone out.
    const patch = await call('PATCH', '/policies/sets/shop', { body: { remove: ['GET /orgs/{orgId}/projects/{projectId}'] }, ifMatch: '"1"' });
    expect(patch).toMatchObject({ status: 422, body: { error: { code: 'policy-tests-failed', details: { failed: 1 } } } });
    const gate = await call('PATCH', '/policies/sets/shop', { body: { gate: 'principal.emailVerified == true' }, ifMatch: '"1"' });
    expect(gate.status).toBe(422);
    expect(gate.body.error.details.failures).toEqual([
      { name: 'viewer reads a project', expected: { decision: 'allow' }, actual: { decision: 'deny', code: 'gate-denied', route: 'GET /orgs/{orgId}/projects/{projectId}' } },
    ]);
    // An upsert that opens deployments to viewers: the route is named in the failure.
    const opened = await call('PATCH', '/policies/sets/shop', { body: { upsert: [{ ...DEPLOY, action: 'read' }] }, ifMatch: '"1"' });
    expect(opened.body.error.details.failures).toEqual([
      { name: 'viewer cannot deploy', expected: { decision: 'deny' }, actual: { decision: 'allow', code: 'allow', route: 'POST /orgs/{orgId}/deploy' } },
    ]);

    // A write that changes only the tests runs the new tests: a wrong expectation is refused.
    const wrong = SHOP_TESTS.map((t) => (t.name === 'health is public' ? { ...t, expect: { decision: 'allow', code: 'allow' } } : t));
    const testsOnly = await call('PUT', '/policies/sets/shop', { body: { routes: [PROJECT, DEPLOY, HEALTH], tests: wrong }, ifMatch: '"1"' });
    expect(testsOnly.body.error.details.failures).toEqual([
      { name: 'health is public', expected: { decision: 'allow', code: 'allow' }, actual: { decision: 'allow', code: 'public', route: 'GET /health' } },
    ]);

    expect(await stored(w)).toEqual(before);
    expect((await call('GET', '/policies/sets/shop')).headers.etag).toBe('"1"');

    // Taking the test away together with the route is a write like any other.
    const both = await call('PUT', '/policies/sets/shop', { body: { routes: [DEPLOY, HEALTH], tests: SHOP_TESTS.slice(1) }, ifMatch: '"1"' });
    expect(both).toMatchObject({ status: 200, headers: { etag: '"2"' } });
  });

  it('the default set under its old names runs its tests too', async () => {
    const w = await adminWorld();
    const call = api(w);
    expect((await call('PUT', '/policies/sets/default', { body: { routes: [PROJECT, HEALTH], tests: SHOP_TESTS.slice(0, 3) }, ifMatch: '*' })).status).toBe(200);
    const before = await stored(w);
    const routes = await call('PUT', '/policies/routes', { body: { routes: [HEALTH] }, ifMatch: '"1"' });
    expect(routes).toMatchObject({ status: 422, body: { error: { code: 'policy-tests-failed' } } });
    const gate = await call('PUT', '/policies/gate', { body: { expression: 'false' }, ifMatch: '"1"' });
    expect(gate).toMatchObject({ status: 422, body: { error: { code: 'policy-tests-failed', details: { failed: 1 } } } });
    expect(await stored(w)).toEqual(before);
    expect((await call('PUT', '/policies/gate', { body: { expression: 'request.method != "DELETE"' }, ifMatch: '"1"' })).status).toBe(200);
  });

  it('a malformed test principal is a 400 with a stable code naming the test; nothing is written', async () => {
    const w = await adminWorld();
    const call = api(w);
    await call('PUT', '/policies/sets/shop', { body: { routes: [PROJECT, HEALTH] }, ifNoneMatch: '*' });
    await w.rt.store.policy.putRole({ name: 'crew', orgId: 'acme', site: [], org: [{ resource: 'project', action: 'read' }], member: [], user: [] }, w.rt.clock.seconds);
    const before = await stored(w);
    const test = (principal: unknown) => ({ name: 't', principal, request: { method: 'GET', path: '/orgs/acme/projects/p' }, expect: 'allow' });
    for (const [principal, code, field] of [
      [{ kind: 'user', id: 'u', siteRoles: ['site-wizard'] }, 'unknown-role', 'tests[0].principal.siteRoles[0]'],
      [{ kind: 'user', id: 'u', orgs: { acme: ['org-wizard'] } }, 'unknown-role', 'tests[0].principal.orgs.acme[0]'],
      // An org's custom role exists only in that org.
      [{ kind: 'user', id: 'u', orgs: { globex: ['crew'] } }, 'unknown-role', 'tests[0].principal.orgs.globex[0]'],
      [{ kind: 'token', tokenKind: 'org', id: 't1', orgId: 'acme', scopes: ['Project:READ'] }, 'invalid-scope', 'tests[0].principal.scopes[0]'],
      [{ id: 'u' }, 'invalid-tests', 'tests[0].principal.kind'],
    ] as const) {
      const res = await call('PUT', '/policies/sets/shop', { body: { routes: [PROJECT, HEALTH], tests: [test(principal)] }, ifMatch: '"1"' });
      expect(res, JSON.stringify(principal)).toMatchObject({ status: 400, body: { error: { code } } });
      expect(res.body.error.details).toEqual({ field });
    }
    expect(await stored(w)).toEqual(before);
    // The custom role, where it exists, passes.
    expect((await call('PUT', '/policies/sets/shop', { body: { routes: [PROJECT, HEALTH], tests: [test({ kind: 'user', id: 'u', orgs: { acme: ['crew'] } })] }, ifMatch: '"1"' })).status).toBe(200);
  });
});

describe('POST /policies/sets/{set}/test', { timeout: 60_000 }, () => {
  it('runs the stored tests, or a candidate\'s (what is left out is the stored one), without writing', async () => {
    const w = await adminWorld();
    const call = api(w);
    await call('PUT', '/policies/sets/shop', { body: { routes: [PROJECT, DEPLOY, HEALTH], tests: SHOP_TESTS }, ifNoneMatch: '*' });
    const before = await stored(w);

    const plain = await call('POST', '/policies/sets/shop/test', { body: {} });
    expect(plain).toMatchObject({ status: 200, body: { version: '1', passed: 4, failed: 0 } });
    expect(plain.body.results.map((r: { name: string; passed: boolean }) => [r.name, r.passed])).toEqual(SHOP_TESTS.map((t) => [t.name, true]));
    expect(plain.body.results[0]).toEqual({ name: 'viewer reads a project', passed: true, expected: { decision: 'allow' }, actual: { decision: 'allow', code: 'allow', route: 'GET /orgs/{orgId}/projects/{projectId}' } });
    // No body at all is the stored version too.
    expect((await call('POST', '/policies/sets/shop/test')).body).toMatchObject({ passed: 4, failed: 0 });

    // A candidate table: failing tests are an answer, not an error.
    const candidate = await call('POST', '/policies/sets/shop/test', { body: { routes: [HEALTH] } });
    expect(candidate).toMatchObject({ status: 200, body: { passed: 3, failed: 1 } });
    expect(candidate.body.results.find((r: { passed: boolean }) => !r.passed)).toMatchObject({ name: 'viewer reads a project', actual: { decision: 'deny', code: 'no-route' } });
    // Candidate gate and tests, stored routes.
    const gated = await call('POST', '/policies/sets/shop/test', { body: { gate: 'false', tests: [SHOP_TESTS[0]] } });
    expect(gated.body).toMatchObject({ passed: 0, failed: 1, results: [{ actual: { code: 'gate-denied' } }] });
    expect((await call('POST', '/policies/sets/shop/test', { body: { gate: null } })).body).toMatchObject({ passed: 4, failed: 0 });

    // Bad candidates are the 400s a write would give.
    for (const [body, code] of [
      [{ routes: [{ route: 'GET x', resource: 'x', action: 'read' }] }, 'invalid-route'],
      [{ gate: 'principal.constructor' }, 'invalid-expression'],
      [{ tests: [{ name: 'x' }] }, 'invalid-tests'],
      [{ tests: [{ ...SHOP_TESTS[0], principal: { kind: 'user', id: 'u', siteRoles: ['nope'] } }] }, 'unknown-role'],
      [{ routes: [], extra: 1 }, 'unknown-field'],
    ] as const) {
      const res = await call('POST', '/policies/sets/shop/test', { body });
      expect(res, JSON.stringify(body)).toMatchObject({ status: 400, body: { error: { code } } });
    }
    expect(await stored(w)).toEqual(before);

    expect((await call('POST', '/policies/sets/nope/test', { body: {} })).body.error.code).toBe('set-not-found');
    expect((await call('POST', '/policies/sets/Nope/test', { body: {} })).body.error.code).toBe('invalid-set-name');
  });

  it('policy readers may test (site-viewer), others may not; the admin set can be tested too', async () => {
    const w = await adminWorld();
    const call = api(w);
    await call('PUT', '/policies/sets/shop', { body: { routes: [PROJECT, HEALTH], tests: SHOP_TESTS.slice(0, 3) }, ifNoneMatch: '*' });
    expect((await call('POST', '/policies/sets/shop/test', { body: {}, ctx: userContext('auditor') })).body).toMatchObject({ passed: 3, failed: 0 });
    for (const who of ['ada', 'mo']) expect((await call('POST', '/policies/sets/shop/test', { body: {}, ctx: userContext(who) })).body.error.code).toBe('cannot-read-policy');
    // The admin API's own set: who reaches which admin endpoint.
    const tests = [
      { name: 'viewers read policies', principal: { kind: 'user', id: 'v', siteRoles: ['site-viewer'] }, request: { method: 'GET', path: '/policies/sets/shop' }, expect: 'allow' },
      { name: 'viewers do not roll back', principal: { kind: 'user', id: 'v', siteRoles: ['site-viewer'] }, request: { method: 'POST', path: '/policies/sets/shop/rollback' }, expect: 'deny' },
      { name: 'viewers test', principal: { kind: 'user', id: 'v', siteRoles: ['site-viewer'] }, request: { method: 'POST', path: '/policies/sets/shop/test' }, expect: 'allow' },
    ];
    expect((await call('POST', '/policies/sets/admin/test', { body: { tests } })).body).toMatchObject({ passed: 3, failed: 0 });
  });
});

/**
 * `gatehouse policy history|version|rollback|check` against the real admin handlers over
 * DynamoDB Local: the CLI's requests go through a fetch that hands them to the admin
 * function as API Gateway would (the bearer names the signed-in user, as the authorizer
 * context would after verifying it).
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/client';
import { run } from '../../cli/main';
import { compileRouteTable } from '../../core/policy/routes';
import { buildHandlers } from '../../functions/apps';
import { ADMIN_ROUTES } from '../../functions/routes';
import { httpEvent, userContext } from '../support/events';
import { adminWorld } from '../functions/admin-support';
import { api, DEPLOY, HEALTH, PROJECT, SHOP_TESTS } from '../functions/policy-support';

const table = compileRouteTable(Object.keys(ADMIN_ROUTES).map((route) => ({ route, resource: 'api', action: 'call' })));

async function cliWorld() {
  const w = await adminWorld();
  const h = buildHandlers(w.rt);
  const sent: { method: string; path: string; headers: Record<string, string> }[] = [];
  const fetch = (async (input: string | URL, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    const headers = Object.fromEntries(Object.entries((init?.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    sent.push({ method, path: url.pathname, headers });
    const match = table.match(method, url.pathname);
    if (!match) return new Response(JSON.stringify({ message: 'Not Found' }), { status: 404 });
    const user = headers.authorization!.replace(/^Bearer /, '');
    const { authorization: _a, ...rest } = headers;
    const res = await h[ADMIN_ROUTES[match.rule.route as keyof typeof ADMIN_ROUTES]](
      httpEvent(method, url.pathname, { context: userContext(user), headers: rest, ...(init?.body ? { rawBody: String(init.body) } : {}), ...(url.search ? { query: Object.fromEntries(url.searchParams) } : {}) }),
    );
    return new Response(res.statusCode === 204 ? null : res.body, { status: res.statusCode, headers: res.headers });
  }) as typeof globalThis.fetch;
  const cli = async (argv: string[], user = 'root') => {
    let out = '';
    let err = '';
    const code = await run(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), env: { GATEHOUSE_URL: 'http://admin.test', GATEHOUSE_TOKEN: user }, fetch });
    return { code, out, err };
  };
  return { w, call: api(w), cli, sent };
}

describe('gatehouse policy history|version|rollback|check', { timeout: 60_000 }, () => {
  it('lists history, shows a version, and rolls back with If-Match from a fresh read or --if-version', async () => {
    const { w, call, cli, sent } = await cliWorld();
    await call('PUT', '/policies/sets/shop', { body: { routes: [HEALTH] }, ifNoneMatch: '*' });
    await call('PATCH', '/policies/sets/shop', { body: { upsert: [PROJECT, DEPLOY], gate: 'request.method != "TRACE"' }, ifMatch: '"1"' });

    const history = await cli(['policy', 'history', 'shop']);
    expect(history.code, history.err).toBe(EXIT.ok);
    expect(history.out).toMatch(/^VERSION\s+ACTION\s+WHEN\s+BY\s+CHANGES\n2\*\s+patch\s+2026-11-22T12:00:00Z\s+root\s+\+2 routes, gate\n1\s+create\s+.*\+1 routes\n$/);
    expect(JSON.parse((await cli(['policy', 'history', 'shop', '--json'])).out).items).toHaveLength(2);

    const shown = await cli(['policy', 'version', 'shop', '1']);
    expect(shown.code).toBe(EXIT.ok);
    expect(shown.out).toContain('action:');
    expect(shown.out).toMatch(/GET \/health\s+health:read\s+-\s+yes/);
    expect((await cli(['policy', 'version', 'shop', 'latest'])).code).toBe(EXIT.usage);
    const missing = await cli(['policy', 'version', 'shop', '9']);
    expect(missing).toMatchObject({ code: EXIT.refused });
    expect(missing.err).toContain('404 version-not-found');

    const back = await cli(['policy', 'rollback', 'shop', '1']);
    expect(back.code, back.err).toBe(EXIT.ok);
    expect(back.out).toBe('restored the routes and gate of version 1 of shop as version 3 (was 2)\n');
    expect(sent.at(-1)).toMatchObject({ method: 'POST', path: '/policies/sets/shop/rollback', headers: { 'if-match': '"2"' } });
    expect((await call('GET', '/policies/sets/shop')).body).toMatchObject({ routes: [HEALTH], gate: null, version: '3' });
    // --if-version: only if nobody wrote since.
    const stale = await cli(['policy', 'rollback', 'shop', '2', '--if-version', '2']);
    expect(stale.code).toBe(EXIT.conflict);
    expect(stale.err).toContain('412 version-mismatch');
    expect((await cli(['policy', 'rollback', 'shop', '2', '--if-version', '3'])).code).toBe(EXIT.ok);
    expect((await call('GET', '/policies/sets/shop')).headers.etag).toBe('"4"');
    // Refused for those who may not write policies.
    expect((await cli(['policy', 'rollback', 'shop', '1'], 'auditor')).err).toContain('403 cannot-update-policy');
    expect((await cli(['policy', 'history', 'shop'], 'ada')).err).toContain('403 cannot-read-policy');
    void w;
  });

  it('check runs the tests on the server against the stored set or a candidate file, and exits 5 when one fails', async () => {
    const { call, cli } = await cliWorld();
    await call('PUT', '/policies/sets/shop', { body: { routes: [PROJECT, DEPLOY, HEALTH], tests: SHOP_TESTS }, ifNoneMatch: '*' });
    const ok = await cli(['policy', 'check', 'shop']);
    expect(ok).toMatchObject({ code: EXIT.ok, out: '4 policy test(s) pass against shop (version 1)\n' });

    // A pulled set (what GET answers, version and warnings included) edited into a candidate.
    const pulled = (await call('GET', '/policies/sets/shop')).body;
    const file = join(tmpdir(), `candidate-${process.pid}-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify({ ...pulled, routes: [DEPLOY, HEALTH] }));
    const bad = await cli(['policy', 'check', 'shop', '--file', file]);
    expect(bad.code).toBe(EXIT.testsFailed);
    expect(bad.out).toContain('1 of 4 policy test(s) fail for the candidate against shop (version 1)');
    expect(bad.out).toContain('FAIL viewer reads a project: expected allow, got deny (no-route)');
    const json = await cli(['policy', 'check', 'shop', '--file', file, '--json']);
    expect(json.code).toBe(EXIT.testsFailed);
    expect(JSON.parse(json.out)).toMatchObject({ failed: 1, passed: 3 });
    // Nothing was written.
    expect((await call('GET', '/policies/sets/shop')).headers.etag).toBe('"1"');
    writeFileSync(file, '{ nope');
    expect((await cli(['policy', 'check', 'shop', '--file', file])).code).toBe(EXIT.usage);
    expect((await cli(['policy', 'check', 'nope'])).err).toContain('404 set-not-found');
  });
});

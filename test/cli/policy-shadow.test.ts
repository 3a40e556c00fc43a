import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../cli/main';
import { buildHandlers } from '../../functions/apps';
import { world } from '../authorizer/fixtures';
import { httpEvent, userContext } from '../support/events';

const ROUTES = [{ route: 'GET /health', resource: 'health', action: 'read', public: true }];

/** The CLI against the real admin function (a fetch that calls the handler), as root. */
async function shadowCli() {
  const w = await world({ routes: ROUTES, ttl: false });
  const admin = buildHandlers(w.rt).admin;
  const fetch = (async (input: string | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    const res = await admin(httpEvent(init.method ?? 'GET', url.pathname, { ...(typeof init.body === 'string' ? { rawBody: init.body } : {}), context: userContext('root'), headers }));
    return new Response(res.statusCode === 204 ? null : res.body, { status: res.statusCode, headers: res.headers });
  }) as typeof globalThis.fetch;
  const cli = async (...argv: string[]) => {
    let out = '';
    let err = '';
    const code = await run(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), env: { GATEHOUSE_URL: 'http://127.0.0.1:1', GATEHOUSE_TOKEN: 'gat_cli-test-credential' }, fetch, sleep: async () => {} });
    return { code, out, err };
  };
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-shadow-'));
  const file = (name: string, doc: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(doc));
    return path;
  };
  return { w, cli, file };
}

describe('gatehouse policy shadow start|report|promote|discard', { timeout: 60_000 }, () => {
  it('drives a candidate through the real admin function, from a policy file', async () => {
    const { w, cli, file } = await shadowCli();
    const candidate = { set: 'default', version: '1', routes: [...ROUTES, { route: 'GET /status', resource: 'status', action: 'read', public: true }], gate: null, tests: [] };
    const f = file('default.json', candidate);

    expect(await cli('policy', 'shadow', 'start', 'staging', '--file', f)).toMatchObject({ code: 2, err: expect.stringContaining('policy set "default", not "staging"') });
    expect(await cli('policy', 'shadow', 'start', 'default', '--file', f)).toEqual({ code: 0, out: 'candidate 1 of default runs in shadow, compared against version 1\n', err: '' });
    // A second start would replace the running one: only on purpose.
    expect((await cli('policy', 'shadow', 'start', 'default', '--file', f)).err).toContain('412 already-exists');
    expect((await cli('policy', 'shadow', 'start', 'default', '--file', f, '--replace')).out).toBe('candidate 2 of default runs in shadow, compared against version 1\n');

    const report = await cli('policy', 'shadow', 'report', 'default');
    expect(report.code).toBe(0);
    expect(report.out).toContain('compared:    0');
    expect(report.out).toContain('(no differences)');
    expect(JSON.parse((await cli('policy', 'shadow', 'report', 'default', '--json')).out)).toMatchObject({ set: 'default', candidate: '2', basedOn: '1', stale: false });

    expect(await cli('policy', 'shadow', 'promote', 'default')).toEqual({ code: 0, out: 'promoted candidate 2: default is at version 2\n', err: '' });
    expect((await w.rt.store.policy.readSet('default')).routes).toEqual(candidate.routes);
    expect((await cli('policy', 'shadow', 'report', 'default')).err).toContain('404 candidate-not-found');

    expect((await cli('policy', 'shadow', 'start', 'default', '--file', f)).code).toBe(0);
    expect(await cli('policy', 'shadow', 'discard', 'default')).toEqual({ code: 0, out: 'discarded candidate 3 of default\n', err: '' });
    expect((await cli('policy', 'shadow', 'discard', 'default')).code).toBe(1);
  });
});

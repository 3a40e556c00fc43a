/**
 * `gatehouse policy …` as a child process against a real local stack (the real handlers
 * behind the local API Gateway, DynamoDB Local, the local OIDC issuer): pull a set to a
 * file, edit, diff, test offline, push with If-Match; a push from a stale file is a 412,
 * exit 4, and writes nothing; --force overwrites; bind and unbind an API and see the
 * demo API decided by the bound set. The policy blocks of docs/cli.md and
 * docs/policies.md run here as written.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/dynamodb-local';
import { startStack, type Stack } from '../../local/stack';
import { adapt, block, BLOCK_CHECKS } from '../docs/blocks';
import { cleanEnv, installedCli, runAsync, stackTrace } from './npm-process';

/** The caches of the local gateway and of the authorizer functions: a bound set decides within a few seconds. */
const TTL_SECONDS = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let stack: Stack;
let dataDir: string;
let work: string;
let env: NodeJS.ProcessEnv;
let node: string;
let bin: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-e2e-'));
  work = mkdtempSync(join(tmpdir(), 'gatehouse-policy-work-'));
  [node, bin] = (await installedCli()).split(' ') as [string, string];
  stack = await startStack({
    dataDir,
    port: 0,
    dynamoPort: await freePort(),
    authTtlSeconds: TTL_SECONDS,
    env: { GATEHOUSE_CACHE_TTL_SECONDS: String(TTL_SECONDS), GATEHOUSE_LOG_LEVEL: 'error' },
    log: () => {},
  });
  env = cleanEnv({ GATEHOUSE_URL: stack.url, GATEHOUSE_TOKEN: stack.bootstrapToken! });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  for (const d of [dataDir, work]) if (d) rmSync(d, { recursive: true, force: true });
});

/** The CLI as a separate process (never in this one: the stack serves from this event loop). */
const gatehouse = (...args: string[]) => runAsync(node, [bin, ...args], { cwd: work, env });

/** The admin API directly, for what the CLI is checked against. */
async function api(method: string, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.url}${path}`, { method, headers: { authorization: `Bearer ${stack.bootstrapToken}`, ...headers } });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get('etag'), body: text ? JSON.parse(text) : undefined };
}

const demo = async (path: string) => (await fetch(`${stack.url}${path}`, { headers: { authorization: `Bearer ${stack.bootstrapToken}` } })).status;

const ROUTES = [
  { route: 'GET /demo/orgs/{orgId}/reports/{reportId}', resource: 'org', action: 'read', org: '{orgId}' },
  { route: 'DELETE /demo/orgs/{orgId}/reports/{reportId}', resource: 'report', action: 'delete', org: '{orgId}' },
];
const admin = { kind: 'user', id: 'bob', orgs: { acme: ['org-admin'] } };
const TESTS = [{ name: 'an admin deletes', principal: admin, request: { method: 'DELETE', path: '/demo/orgs/acme/reports/r1' }, expect: 'allow' }];

describe('gatehouse policy against a real stack', () => {
  it('pull, edit, diff, test, push; a stale push is exit 4 and writes nothing; --force overwrites', async () => {
    const seed = join(work, 'seed.json');
    writeFileSync(seed, JSON.stringify({ routes: ROUTES, gate: null, tests: TESTS }));
    const created = await gatehouse('policy', 'push', 'reports', '--file', seed, '--create');
    expect(created.status, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^created policy set reports: version (\d+)/);
    // A second create of the same set is refused by If-None-Match: *.
    expect((await gatehouse('policy', 'push', 'reports', '--file', seed, '--create')).status).toBe(4);

    // Two operators pull the same version.
    const mine = join(work, 'reports.policy.json');
    const theirs = join(work, 'theirs.policy.json');
    const pulled = await gatehouse('policy', 'pull', 'reports', '--out', mine);
    expect(pulled.status, pulled.stderr).toBe(0);
    cpSync(mine, theirs);
    const v1 = JSON.parse(readFileSync(mine, 'utf8')).version as string;
    expect((await api('GET', '/policies/sets/reports')).etag).toBe(`"${v1}"`);
    expect(JSON.parse(readFileSync(mine, 'utf8'))).toEqual({ set: 'reports', version: v1, routes: ROUTES, gate: null, tests: TESTS });

    // One edits: a gate, a new rule, a test for it.
    const edited = JSON.parse(readFileSync(mine, 'utf8'));
    edited.gate = 'principal.kind == "user"';
    edited.routes.push({ route: 'POST /demo/orgs/{orgId}/reports', resource: 'report', action: 'create', org: '{orgId}' });
    edited.tests.push({ name: 'an org token is not a user', principal: { kind: 'token', tokenKind: 'org', id: 'ci', orgId: 'acme' }, request: { method: 'POST', path: '/demo/orgs/acme/reports' }, expect: { decision: 'deny', code: 'gate-denied' } });
    writeFileSync(mine, JSON.stringify(edited, null, 2));

    const diff = await gatehouse('policy', 'diff', 'reports', '--file', mine);
    expect(diff.status, diff.stderr).toBe(1);
    expect(diff.stdout).toContain(`live version ${v1}`);
    expect(diff.stdout).toContain('  + POST /demo/orgs/{orgId}/reports  report:create org={orgId}\n');
    expect(diff.stdout).toContain('gate: (none) -> "principal.kind == \\"user\\""');
    expect(diff.stdout).toContain('  + an org token is not a user');

    const test = await gatehouse('policy', 'test', '--file', mine);
    expect(test.status, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toBe('ok    an admin deletes\nok    an org token is not a user\n2 passed, 0 failed\n');

    const push = await gatehouse('policy', 'push', 'reports', '--file', mine);
    expect(push.status, push.stderr).toBe(0);
    const live = await api('GET', '/policies/sets/reports');
    const v2 = (live.body as { version: string }).version;
    expect(v2).not.toBe(v1);
    expect(push.stdout).toContain(`replaced policy set reports: version ${v2}; ${mine} now records version ${v2}`);
    expect(JSON.parse(readFileSync(mine, 'utf8'))).toMatchObject({ version: v2, gate: edited.gate, routes: edited.routes, tests: edited.tests });
    expect(live.body).toMatchObject({ gate: edited.gate, routes: edited.routes, tests: edited.tests });
    expect((await gatehouse('policy', 'diff', 'reports', '--file', mine)).status).toBe(0);

    // The other operator, still at v1, pushes an edit of their own: refused, nothing written.
    const stale = JSON.parse(readFileSync(theirs, 'utf8'));
    stale.routes = stale.routes.slice(1); // the read rule goes (the delete rule its test pins stays)
    writeFileSync(theirs, JSON.stringify(stale, null, 2));
    const theirText = readFileSync(theirs, 'utf8');
    const conflict = await gatehouse('policy', 'push', 'reports', '--file', theirs);
    expect(conflict.status).toBe(4);
    expect(conflict.stdout).toBe('');
    expect(conflict.stderr).toContain(`gatehouse: 412 version-mismatch: policy set reports changed since ${JSON.stringify(theirs)} was pulled at version ${v1}; nothing was written`);
    expect(conflict.stderr).not.toMatch(stackTrace);
    expect(readFileSync(theirs, 'utf8')).toBe(theirText);
    const after = await api('GET', '/policies/sets/reports');
    expect(after.etag).toBe(`"${v2}"`);
    expect(after.body).toEqual(live.body);
    // diff tells them why, and what the other push changed.
    const why = await gatehouse('policy', 'diff', 'reports', '--file', theirs);
    expect(why.stdout).toContain('(the set changed since the file was pulled)');

    // --force overwrites on purpose.
    const forced = await gatehouse('policy', 'push', 'reports', '--file', theirs, '--force');
    expect(forced.status, forced.stderr).toBe(0);
    const v3 = (await api('GET', '/policies/sets/reports')).body as { version: string; routes: unknown[]; gate: string | null };
    expect(v3).toMatchObject({ routes: stale.routes, gate: null });
    expect(JSON.parse(readFileSync(theirs, 'utf8')).version).toBe(v3.version);

    // A per-rule edit from a version that is no longer live is refused too.
    const patch = await gatehouse('policy', 'rules', 'reports', '--remove', 'GET /demo/orgs/{orgId}/reports/{reportId}', '--version', v2);
    expect(patch.status).toBe(4);
    expect((await api('GET', '/policies/sets/reports')).etag).toBe(`"${v3.version}"`);
  }, 120_000);

  it('bind and unbind an API: the demo API is decided by the bound set, then by default again', async () => {
    const file = join(work, 'locked.json');
    // Only users pass this set's gate: the bootstrap site token does not.
    writeFileSync(file, JSON.stringify({ routes: [{ route: 'ANY /demo/{proxy+}', resource: 'demo', action: 'read' }], gate: 'principal.kind == "user"', tests: [] }));
    expect((await gatehouse('policy', 'push', 'locked', '--file', file, '--create')).status).toBe(0);
    expect(await demo('/demo/orgs/acme/hello')).toBe(200);

    const bind = await gatehouse('policy', 'bind', 'localdemo0', 'locked');
    expect(bind.status, bind.stderr).toBe(0);
    expect(bind.stdout).toBe('bound API localdemo0 to policy set locked (was unbound: default)\n');
    expect((await api('GET', '/policies/apis/localdemo0')).body).toMatchObject({ apiId: 'localdemo0', set: 'locked' });
    expect((await gatehouse('policy', 'bindings')).stdout).toMatch(/^localdemo0\s+locked\s/m);
    await sleep(TTL_SECONDS * 2000 + 500);
    expect(await demo('/demo/orgs/acme/hello')).toBe(403);
    // A bound set cannot be deleted.
    const inUse = await gatehouse('policy', 'delete', 'locked');
    expect(inUse).toMatchObject({ status: 1 });
    expect(inUse.stderr).toContain('409 set-in-use');

    const unbind = await gatehouse('policy', 'unbind', 'localdemo0');
    expect(unbind.status, unbind.stderr).toBe(0);
    expect((await api('GET', '/policies/apis/localdemo0')).status).toBe(404);
    await sleep(TTL_SECONDS * 2000 + 500);
    expect(await demo('/demo/orgs/acme/hello')).toBe(200);
    expect((await gatehouse('policy', 'unbind', 'localdemo0')).status).toBe(1);
    expect((await gatehouse('policy', 'delete', 'locked')).status).toBe(0);
    expect((await api('GET', '/policies/sets/locked')).status).toBe(404);
  }, 120_000);

  it('the default set at its first endpoints: policy routes and policy gate, with If-Match', async () => {
    const routes = await gatehouse('--json', 'policy', 'routes');
    expect(routes.status, routes.stderr).toBe(0);
    const table = JSON.parse(routes.stdout) as { routes: unknown[]; version: string };
    writeFileSync(join(work, 'routes.json'), routes.stdout);
    const gate = await gatehouse('policy', 'gate', '--set', 'principal.kind != "anonymous"');
    expect(gate.status, gate.stderr).toBe(0);
    // The routes file was read before the gate moved the default set on: a stale replace.
    expect((await gatehouse('policy', 'routes', '--replace', 'routes.json')).status).toBe(4);
    expect((await gatehouse('policy', 'routes', '--replace', 'routes.json', '--force')).status).toBe(0);
    expect((await api('GET', '/policies/routes')).body).toMatchObject({ routes: table.routes });
    expect((await gatehouse('policy', 'gate', '--clear')).status).toBe(0);
    expect((await api('GET', '/policies/gate')).body).toMatchObject({ expression: null });
  }, 60_000);

  it('the policy blocks of docs/policies.md and docs/cli.md run as written', async () => {
    const blocks = BLOCK_CHECKS.filter((c) => c.how === 'e2e-policy').map((c) => block(c.file, c.heading, c.nth ?? 0));
    expect(blocks.map((b) => b.file)).toEqual(['docs/policies.md', 'docs/cli.md', 'docs/cli.md', 'docs/cli.md', 'docs/policies.md', 'docs/policies.md', 'docs/policies.md', 'docs/policies.md']);
    const script = blocks.map((b) => `echo "=== ${b.file}: ${b.heading}"\n${adapt(b.text, stack.url, dataDir).replaceAll('npx gatehouse ', `${node} ${bin} `)}`).join('\n');
    const r = await runAsync('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: work, env: cleanEnv({}), timeoutMs: 120_000 });
    expect(r.stderr).not.toMatch(stackTrace);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('5 passed, 0 failed\n');
    expect(r.stdout).toMatch(/created policy set projects: version \d+; projects\.policy\.json now records version \d+/);
    expect(r.stdout).toContain('+ POST /demo/orgs/{orgId}/projects  project:create org={orgId}');
    expect(r.stdout).toContain('differs: exit code 1');
    expect(r.stdout).toContain('6 passed, 0 failed\n');
    expect(r.stdout).toContain('no differences');
    expect(r.stdout).toContain('exit code 4');
    expect(r.stdout).toMatch(/^200\n(.|\n)*bound API localdemo0 to policy set projects(.|\n)*^403\n(.|\n)*unbound API localdemo0/m);
    // docs/policies.md, tests, shadow mode and history: a write breaking a test is refused
    // (exit 5) and changes nothing; rollback restores; the candidate sees the site token
    // the live set refuses, the live set answers until the promotion, then the promoted one.
    const after = r.stdout.slice(r.stdout.indexOf('=== docs/policies.md: Tests guard every write'));
    expect(after).toContain('tests fail: exit code 5');
    expect(after).toContain('refused: exit code 5');
    expect(after).toMatch(/restored the routes and gate of version 2 of projects as version (\d+) \(was \d+\)/);
    expect(after).toMatch(/candidate 1 of projects runs in shadow, compared against version \d+/);
    expect(after).toMatch(/^403\n403\n/m);
    expect(after).toMatch(/differing:\s+[1-9]/);
    expect(after).toMatch(/deny\s+allow\s+GET \/demo\/orgs\/\{orgId\}\/projects\/\{projectId\}/);
    expect(after).toMatch(/promoted candidate 1: projects is at version \d+\n200\n/);
    expect(after).toMatch(/\d+\*\s+promote/);
  }, 180_000);
});

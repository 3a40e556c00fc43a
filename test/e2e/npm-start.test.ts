/**
 * `npm start` as a newcomer runs it: a real child process (npm -> tsx -> local/start.ts
 * -> java), its console output, the README "Try it locally" shell block run verbatim
 * with bash and curl (only the address, the data directory and the sleeps adapted),
 * a restart on the same data directory, SIGTERM/SIGINT leaving no Java behind, and
 * one-line messages for a missing Java and taken ports.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/dynamodb-local';
import { fetchLocalToken } from '../../local/oidc-client';

const ROOT = resolve(import.meta.dirname, '../..');

interface Run {
  child: ChildProcess;
  /** Every process under npm once it was ready (for cleanup if a test fails). */
  tree: number[];
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The environment a newcomer would have, minus anything that points gatehouse elsewhere. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GATEHOUSE_') || k === 'PORT' || k.startsWith('AWS_') || k.startsWith('VITEST') || k === 'NODE_OPTIONS') delete env[k];
  // Keep the child's output plain (no colours) so lines can be compared.
  return { ...env, NO_COLOR: '1', FORCE_COLOR: '0', GATEHOUSE_LOG_LEVEL: 'error', ...extra };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, tree: [], out: () => out, err: () => err, exit };
}

function descendants(pid: number): number[] {
  const rows = spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter((r) => r.length === 2);
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of rows) if (pp === p) (out.push(c!), walk(c!));
  };
  walk(pid);
  return out;
}

/** SIGKILLs whatever a failed test left running (only processes this file started). */
function reap(p: Run | undefined): void {
  if (!p) return;
  for (const pid of [p.child.pid!, ...p.tree]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Resolves once `ready http://…` is printed; rejects if the process ends first. */
async function ready(p: Run, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void p.exit.then(() => (ended = true));
  while (Date.now() < deadline) {
    const m = /^ready (http:\/\/127\.0\.0\.1:\d+)$/m.exec(p.out());
    if (m) {
      p.tree = descendants(p.child.pid!);
      return m[1]!;
    }
    if (ended) throw new Error(`npm start ended before ready:\n${p.out()}\n${p.err()}`);
    await sleep(100);
  }
  throw new Error(`npm start not ready after ${timeoutMs} ms:\n${p.out()}\n${p.err()}`);
}

/** DynamoDB Local processes (java … DynamoDBLocal.jar … -port <port>) still running. */
function javaOn(port: number): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).stdout;
  return ps.split('\n').filter((l) => l.includes('DynamoDBLocal.jar') && new RegExp(`-port ${port}(\\s|$)`).test(l));
}

async function noJavaOn(port: number, timeoutMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && javaOn(port).length) await sleep(100);
  return javaOn(port);
}

async function portWithNextFree(): Promise<number> {
  // npm start puts the OIDC issuer on PORT + 1.
  for (;;) {
    const p = await freePort();
    if (p < 65535 && (await canListen(p + 1))) return p;
  }
}

async function canListen(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((r) => {
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
  });
}

async function occupy(port: number): Promise<Server> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stackTrace = /^\s+at\s/m;

async function api(url: string, method: string, path: string, credential?: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...(credential ? { authorization: `Bearer ${credential}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** The README's "Try it locally" shell block. */
function readmeQuickstart(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Try it locally'));
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README: no ```sh block under "### Try it locally"');
  return m[1]!;
}

describe('npm start, as a newcomer runs it', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-npm-start-'));
  let port: number;
  let dynamoPort: number;
  let env: NodeJS.ProcessEnv;
  let first: Run;
  let second: Run | undefined;
  let url: string;

  beforeAll(async () => {
    port = await portWithNextFree();
    dynamoPort = await freePort();
    // Short caches so the README's waits can be short too.
    env = cleanEnv({ PORT: String(port), GATEHOUSE_DYNAMODB_PORT: String(dynamoPort), GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_LOCAL_AUTH_TTL_SECONDS: '1', GATEHOUSE_CACHE_TTL_SECONDS: '1' });
    first = run('npm', ['start'], env);
    url = await ready(first);
  }, 90_000);

  afterAll(async () => {
    reap(first);
    reap(second);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('says what runs where, prints the bootstrap token once (file mode 0600) and exactly one ready line', () => {
    const out = first.out();
    expect(url).toBe(`http://127.0.0.1:${port}`);
    expect(out.match(/^ready /gm)).toHaveLength(1);
    expect(out.trimEnd().split('\n').at(-1)).toBe(`ready ${url}`);
    expect(out).toContain(`DynamoDB Local   http://127.0.0.1:${dynamoPort}`);
    expect(out).toContain(`OIDC issuer      http://127.0.0.1:${port + 1}`);
    expect(out).toContain('npm run token -- --user alice --email alice@example.com');
    const token = readFileSync(join(dataDir, 'bootstrap-token'), 'utf8').trim();
    expect(token).toMatch(/^gat_/);
    expect(out).toContain(token);
    expect(statSync(join(dataDir, 'bootstrap-token')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'oidc-signing-key.json')).mode & 0o777).toBe(0o600);
    expect(first.err()).not.toMatch(stackTrace);
    expect(javaOn(dynamoPort)).toHaveLength(1);
  });

  it('the README quickstart block works as written (bash + curl + npm run token)', () => {
    const script = readmeQuickstart()
      .replaceAll('http://127.0.0.1:3000', url)
      .replaceAll('.gatehouse/', `${dataDir}/`)
      // The README waits for the default 5 s caches; this stack uses 1 s ones.
      .replace(/^sleep \d+$/gm, 'sleep 3');
    const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).not.toMatch(stackTrace);
    expect(r.status, r.stderr).toBe(0);
    // curl prints the JSON bodies back to back (no newline after them).
    expect(r.stdout).toContain('{"id":"acme","name":"Acme"');
    expect(r.stdout).toMatch(/"status":"accepted".*"membership":\{"orgId":"acme","userId":"alice","roles":\["org-admin"\]\}/);
    // The demo upstream echoes alice's token context...
    const demo = JSON.parse(/\{"method":.*?\}\}/.exec(r.stdout)![0]);
    expect(demo).toMatchObject({ method: 'GET', path: '/demo/orgs/acme/hello', context: { principalId: 'alice', userId: 'alice', kind: 'token', orgIds: 'acme' } });
    // ...refuses another org (403) and, once revoked and the caches passed, the token (401).
    expect(r.stdout.endsWith('}403\n401\n')).toBe(true);
  }, 90_000);

  it('stops on SIGTERM with no Java left; a restart on the same data directory keeps keys, tokens and memberships; SIGINT stops it too', async () => {
    const boot = readFileSync(join(dataDir, 'bootstrap-token'), 'utf8').trim();
    const jwt = await fetchLocalToken(`http://127.0.0.1:${port + 1}/token`, 'alice', 'alice@example.com');
    const created = await api(url, 'POST', '/orgs/acme/tokens', boot, { name: 'ci' });
    expect(created.status).toBe(201);

    first.child.kill('SIGTERM');
    // npm forwards the signal, waits for the stack to stop, then re-raises it on itself.
    expect([0, 'SIGTERM']).toContain((await first.exit).code ?? (await first.exit).signal);
    expect(await noJavaOn(dynamoPort)).toEqual([]);
    expect(first.err()).not.toMatch(stackTrace);
    expect(await canListen(port)).toBe(true);

    const restarted = run('npm', ['start'], env);
    second = restarted;
    try {
      const url2 = await ready(restarted);
      expect(url2).toBe(url);
      // No new bootstrap token, and the old one is not printed again.
      expect(restarted.out()).not.toContain(boot);
      expect(restarted.out()).toContain(`bootstrap token  in ${dataDir}/bootstrap-token`);
      expect((await api(url, 'GET', '/me', boot)).status).toBe(200);
      // A JWT issued before the restart still verifies (same issuer, signing key kept)...
      const me = await api(url, 'GET', '/me', jwt);
      expect(me.status).toBe(200);
      // ...alice is still a member of acme, and the org token still works.
      const members = await api(url, 'GET', '/orgs/acme/members', jwt);
      expect(members.status).toBe(200);
      expect(members.body.items.map((m: { userId: string }) => m.userId)).toContain('alice');
      expect((await api(url, 'GET', `/tokens/${created.body.id}`, created.body.token)).status).not.toBe(401);
      const demo = await api(url, 'GET', '/demo/public/anything', created.body.token);
      expect(demo).toMatchObject({ status: 200, body: { context: { kind: 'token', tokenId: created.body.id } } });
    } finally {
      restarted.child.kill('SIGINT');
      const { code, signal } = await restarted.exit;
      expect([0, 'SIGINT']).toContain(code ?? signal);
    }
    expect(await noJavaOn(dynamoPort)).toEqual([]);
    expect(restarted.err()).not.toMatch(stackTrace);
  }, 120_000);
});

describe('npm start -- --in-memory', () => {
  it('prints a Try line with the bootstrap token itself (there is no token file), and leaves no data directory', async () => {
    const port = await portWithNextFree();
    const dynamoPort = await freePort();
    const cwdData = join(ROOT, '.gatehouse-should-not-exist');
    const p = run('npm', ['start', '--', '--in-memory'], cleanEnv({ PORT: String(port), GATEHOUSE_DYNAMODB_PORT: String(dynamoPort), GATEHOUSE_DATA_DIR: cwdData }));
    try {
      const url = await ready(p);
      const out = p.out();
      const token = /^ {2}(gat_\S+)$/m.exec(out)?.[1];
      expect(token).toBeDefined();
      expect(out).toContain(`Try: curl -H "Authorization: Bearer ${token}" ${url}/me`);
      expect(out).not.toContain('bootstrap-token');
      expect(out).toContain('(in memory)');
      expect(existsSync(cwdData)).toBe(false);
      // The printed line works as printed.
      const me = await api(url, 'GET', '/me', token);
      expect(me.status).toBe(200);
      p.child.kill('SIGTERM');
      expect((await p.exit).code).toBe(0);
      expect(await noJavaOn(dynamoPort)).toEqual([]);
    } finally {
      reap(p);
      rmSync(cwdData, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('npm start: one clear line instead of a stack trace', () => {
  it('when Java is missing', async () => {
    // A PATH with node and npm but no java.
    const bin = mkdtempSync(join(tmpdir(), 'gatehouse-nojava-'));
    mkdirSync(join(bin, 'bin'));
    for (const tool of ['node', 'npm', 'sh', 'ps']) {
      const where = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      if (where && existsSync(where)) symlinkSync(where, join(bin, 'bin', tool));
    }
    try {
      const p = run('npm', ['start', '--', '--in-memory'], cleanEnv({ PATH: join(bin, 'bin'), PORT: String(await freePort()), GATEHOUSE_DYNAMODB_PORT: String(await freePort()) }));
      const { code } = await p.exit;
      expect(code).toBe(1);
      const errLines = p.err().split('\n').filter((l) => l.startsWith('gatehouse:'));
      expect(errLines).toEqual([expect.stringMatching(/^gatehouse: Java is not installed/)]);
      expect(p.err()).not.toMatch(stackTrace);
      expect(p.out()).not.toMatch(/^ready /m);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  }, 60_000);

  it.each([
    ['the API (PORT)', 'api'],
    ['DynamoDB Local (GATEHOUSE_DYNAMODB_PORT)', 'dynamo'],
    ['the OIDC issuer (PORT + 1)', 'oidc'],
  ] as const)('when the port for %s is taken, and no Java is left behind', async (_what, which) => {
    const port = await portWithNextFree();
    const dynamoPort = await freePort();
    const taken = which === 'api' ? port : which === 'dynamo' ? dynamoPort : port + 1;
    const blocker = await occupy(taken);
    try {
      const p = run('npm', ['start', '--', '--in-memory'], cleanEnv({ PORT: String(port), GATEHOUSE_DYNAMODB_PORT: String(dynamoPort) }));
      const { code } = await p.exit;
      expect(code).toBe(1);
      const errLines = p.err().split('\n').filter((l) => l.startsWith('gatehouse:'));
      expect(errLines).toHaveLength(1);
      expect(errLines[0]).toMatch(new RegExp(`\\b${taken}\\b`));
      expect(errLines[0]).toMatch(/in use/);
      // Which variable moves it: a newcomer should not have to guess.
      expect(errLines[0]).toMatch(which === 'api' ? /\bPORT\b/ : which === 'dynamo' ? /GATEHOUSE_DYNAMODB_PORT/ : /local OIDC issuer.*GATEHOUSE_OIDC_PORT/);
      expect(p.err()).not.toMatch(stackTrace);
      expect(p.out()).not.toMatch(/^ready /m);
      expect(await noJavaOn(dynamoPort)).toEqual([]);
    } finally {
      blocker.close();
    }
  }, 60_000);
});

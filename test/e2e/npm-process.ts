/** `npm start` as a child process, for the end-to-end tests of the CLI and local tools. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { freePort } from '../../local/dynamodb-local';

const ROOT = resolve(import.meta.dirname, '../..');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const stackTrace = /^\s+at\s/m;

export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GATEHOUSE_') || k === 'PORT' || k.startsWith('AWS_') || k.startsWith('VITEST') || k === 'NODE_OPTIONS') delete env[k];
  return { ...env, NO_COLOR: '1', FORCE_COLOR: '0', GATEHOUSE_LOG_LEVEL: 'error', ...extra };
}

export async function canListen(port: number): Promise<boolean> {
  const s = createNetServer();
  return new Promise((r) => {
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
  });
}

export async function portWithNextFree(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p < 65535 && (await canListen(p + 1))) return p;
  }
}

export function javaOn(port: number): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).stdout;
  return ps.split('\n').filter((l) => l.includes('DynamoDBLocal.jar') && new RegExp(`-port ${port}(\\s|$)`).test(l));
}

export async function noJavaOn(port: number, timeoutMs = 15_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && javaOn(port).length) await sleep(100);
  return javaOn(port);
}

function descendants(pid: number): number[] {
  const rows = spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.trim().split(/\s+/).map(Number)).filter((r) => r.length === 2);
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of rows) if (pp === p) (out.push(c!), walk(c!));
  };
  walk(pid);
  return out;
}

export interface Started {
  child: ChildProcess;
  url: string;
  tree: number[];
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm start` as a newcomer runs it, in its own process group; resolves at `ready`. */
export async function npmStart(args: string[], env: NodeJS.ProcessEnv): Promise<Started> {
  const child = spawn('npm', ['start', ...(args.length ? ['--', ...args] : [])], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let ended = false;
  void exit.then(() => (ended = true));
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const m = /^ready (http:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
    if (m) return { child, url: m[1]!, tree: descendants(child.pid!), out: () => out, err: () => err, exit };
    if (ended) throw new Error(`npm start ended before ready:\n${out}\n${err}`);
    await sleep(100);
  }
  throw new Error(`npm start not ready:\n${out}\n${err}`);
}

/** SIGKILLs what a failed test left running (only processes this file started). */
export function reap(s: Started | undefined): void {
  for (const pid of s ? [s.child.pid!, ...s.tree] : []) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}


/**
 * The CLI as an installed copy would have it: cli/bin.js, package.json and the bundle of
 * `npm run build:cli`, in a directory where tsx cannot be found. Returns the command
 * that runs it. (Each `npx gatehouse` through tsx costs seconds; the bundle, a fraction.)
 */
export async function installedCli(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-installed-'));
  mkdirSync(join(dir, 'cli'));
  copyFileSync(join(ROOT, 'cli/bin.js'), join(dir, 'cli/bin.js'));
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  await build({ entryPoints: [join(ROOT, 'cli/main.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: join(dir, 'dist/gatehouse.mjs'), logLevel: 'warning' });
  return `node ${join(dir, 'cli/bin.js')}`;
}

/** Runs a command without blocking the event loop (servers in this process keep serving). */
export function runAsync(command: string, args: string[], options: { cwd?: string; env: NodeJS.ProcessEnv; input?: string; timeoutMs?: number }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('close', (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

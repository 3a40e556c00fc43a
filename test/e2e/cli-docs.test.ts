/**
 * The gatehouse CLI against a real `npm start` (npm -> node -> DynamoDB Local, the local
 * OIDC issuer, the local gateway): the README's CLI walkthrough and the docs' shell blocks
 * run verbatim with bash (only the address, the data directory and the waits adapted),
 * one token survives a create whose answer was lost, and a hang-up stops the stack.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/dynamodb-local';
import { adapt, block, BLOCK_CHECKS } from '../docs/blocks';
import { canListen, cleanEnv, installedCli, noJavaOn, npmStart, portWithNextFree, reap, runAsync, sleep, stackTrace, type Started } from './npm-process';

const ROOT = resolve(import.meta.dirname, '../..');
describe('the gatehouse CLI against npm start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-e2e-'));
  let stack: Started;
  let env: NodeJS.ProcessEnv;
  let dynamoPort: number;
  let port: number;
  let gatehouse: string;

  beforeAll(async () => {
    gatehouse = await installedCli();
    port = await portWithNextFree();
    dynamoPort = await freePort();
    env = cleanEnv({ PORT: String(port), GATEHOUSE_DYNAMODB_PORT: String(dynamoPort), GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_LOCAL_AUTH_TTL_SECONDS: '1', GATEHOUSE_CACHE_TTL_SECONDS: '1' });
    stack = await npmStart([], env);
  }, 120_000);

  afterAll(() => {
    reap(stack);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the README walkthrough and every e2e block of docs/ run as written (bash + npx gatehouse + npm run token + curl)', () => {
    const blocks = BLOCK_CHECKS.filter((c) => c.how === 'e2e').map((c) => block(c.file, c.heading, c.nth ?? 0));
    expect(blocks[0]!.file).toBe('README.md');
    // One bash session: later blocks use what earlier ones set (ALICE, the acme org).
    // `npx gatehouse` is the installed copy here (its bundle starts in a fraction of tsx's
    // time); test/cli/cli.test.ts runs `npx gatehouse` itself.
    const script = blocks.map((b) => `echo "=== ${b.file}: ${b.heading}"\n${adapt(b.text, stack.url, dataDir).replaceAll('npx gatehouse ', `${gatehouse} `)}`).join('\n');
    const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: ROOT, env, encoding: 'utf8', timeout: 240_000 });
    expect(r.stderr).not.toMatch(stackTrace);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const [readme, rest] = r.stdout.split('=== docs/admin-api.md') as [string, string];
    expect(readme).toContain('created org acme (Acme)');
    expect(readme).toMatch(/invited alice@example.com to acme as org-admin/);
    expect(readme).toContain('joined acme as org-admin');
    const demo = JSON.parse(/\{"method":.*?\}\}/.exec(readme)![0]);
    expect(demo).toMatchObject({ method: 'GET', path: '/demo/orgs/acme/hello', context: { principalId: 'alice', kind: 'token', orgIds: 'acme' } });
    // New secret works, the old one is refused after rotation, and both after the revoke.
    expect(readme).toMatch(/\}200\n401\nrevoked token \w{16}\n401\n$/);
    // The retried create (docs/admin-api.md) answered one id twice.
    const ids = /^([0-9A-Za-z]{16})\n([0-9A-Za-z]{16})\n/m.exec(rest);
    expect(ids?.[1]).toBe(ids?.[2]);
    expect(rest).toContain('created role project-reader in globex');
    expect(rest).toContain('exit code 1');
    expect(rest).toContain('deleted org globex');
  }, 300_000);

  it('a create whose answer is lost is retried with its Idempotency-Key: one token, and the secret printed works', async () => {
    // A proxy in front of the gateway that drops the connection after forwarding the first POST.
    let dropped = false;
    const proxy: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const target = new URL(stack.url);
        const fwd = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
          const body: Buffer[] = [];
          up.on('data', (c: Buffer) => body.push(c));
          up.on('end', () => {
            if (req.method === 'POST' && !dropped) {
              dropped = true;
              return req.socket.destroy();
            }
            res.writeHead(up.statusCode!, up.headers);
            res.end(Buffer.concat(body));
          });
        });
        fwd.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const admin = readFileSync(join(dataDir, 'bootstrap-token'), 'utf8').trim();
      const [node, bin] = gatehouse.split(' ') as [string, string];
      const cli = (args: string[], url: string, credential = admin) => runAsync(node, [bin, ...args], { env: { ...env, GATEHOUSE_URL: url, GATEHOUSE_TOKEN: credential } });
      const created = await cli(['tokens', 'create', '--site', '--name', 'lost-answer', '--json'], `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
      expect(created.status, created.stderr).toBe(0);
      expect(dropped).toBe(true);
      const token = JSON.parse(created.stdout);
      const listed = JSON.parse((await cli(['tokens', 'list', '--site', '--all', '--json'], stack.url)).stdout);
      expect(listed.items.filter((t: { name: string }) => t.name === 'lost-answer')).toHaveLength(1);
      const me = await cli(['me', '--field', 'token.id'], stack.url, token.token);
      expect(me.stdout.trim()).toBe(token.id);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  }, 120_000);

  it('kill -HUP on npm (which does not forward it) stops the stack: no Java left, the port free', async () => {
    process.kill(stack.child.pid!, 'SIGHUP');
    await stack.exit;
    expect(await noJavaOn(dynamoPort)).toEqual([]);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !(await canListen(port))) await sleep(100);
    expect(await canListen(port)).toBe(true);
    expect(stack.err()).not.toMatch(stackTrace);
  }, 60_000);
});

/**
 * The gatehouse CLI without a stack: parsing, help, exit codes, output modes, and the
 * credential never shown. Requests go to a real HTTP server on loopback that answers
 * like the admin API (or the gateway) would.
 */
import { spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helpText, parseCommand, UsageError } from '../../cli/args';
import { EXIT } from '../../cli/client';
import { COMMANDS, GLOBAL_OPTIONS, run } from '../../cli/main';
import { freePort } from '../../local/dynamodb-local';
import { ADMIN_ROUTES } from '../../functions/routes';

const ROOT = resolve(import.meta.dirname, '../..');
const SECRET = 'gat_SeCrEtIdSeCrEtId_SeCrEtSeCrEtSeCrEtSeCrEtSeCrEt000000';

interface Seen { method: string; url: string; headers: IncomingMessage['headers']; body: string }

/** A loopback server answering from a handler; records every request. */
async function server(answer: (req: Seen) => { status: number; body?: unknown; raw?: string; drop?: boolean }) {
  const seen: Seen[] = [];
  const srv: Server = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += String(c);
    const s = { method: req.method!, url: req.url!, headers: req.headers, body };
    seen.push(s);
    const a = answer(s);
    if (a.drop) return req.socket.destroy();
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(a.raw ?? (a.body === undefined ? '' : JSON.stringify(a.body)));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

async function cli(argv: string[], env: Record<string, string | undefined> = {}, stdin = '') {
  let out = '';
  let err = '';
  const code = await run(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), env, stdin: async () => stdin, sleep: async () => {}, now: () => Date.UTC(2026, 10, 22, 12) });
  return { code, out, err };
}

const TOKEN_VIEW = { id: 'AbCdEfGhIjKlMnOp', kind: 'personal', name: 'laptop', scopes: null, orgId: null, ownerId: 'alice', createdAt: 1795000000, expiresAt: 1797592000, lastUsedAt: null, status: 'active' };

describe('gatehouse: help and usage', () => {
  it('--help on the tool, on every group and on every command prints to stdout and exits 0', async () => {
    expect((await cli(['--help'])).code).toBe(0);
    expect((await cli(['help'])).out).toContain('usage: gatehouse <command>');
    for (const group of new Set(COMMANDS.filter((c) => c.path.length > 1).map((c) => c.path[0]!))) {
      const r = await cli([group, '--help']);
      expect(r.code, group).toBe(0);
      expect(r.out).toContain(`usage: gatehouse ${group} <command>`);
    }
    for (const c of COMMANDS) {
      for (const argv of [[...c.path, '--help'], [...c.path, '-h'], ['--json', ...c.path, '--bogus', '--help']]) {
        const r = await cli(argv);
        expect(r.code, argv.join(' ')).toBe(0);
        expect(r.out).toContain(`usage: gatehouse ${c.path.join(' ')}`);
        expect(r.err).toBe('');
      }
    }
  });

  it.each([
    [[], 'usage: gatehouse'],
    [['tokenz', 'list'], 'unknown command'],
    [['tokens'], 'usage: gatehouse tokens <command>'],
    [['tokens', 'create'], '--name is required'],
    [['tokens', 'create', '--name'], '--name needs a value'],
    [['tokens', 'create', '--name', '--days', '3'], '--name needs a value'],
    [['tokens', 'create', '--name', 'x', '--dayz', '3'], 'unknown option --dayz (did you mean --days?)'],
    [['tokens', 'create', '--name', 'x', '--days', '0'], '--days must be an integer 1..3650'],
    [['tokens', 'create', '--name', 'x', '--org', 'acme', '--site'], 'give --org or --site, not both'],
    [['tokens', 'show'], 'missing <id>'],
    [['tokens', 'show', 'a', 'b'], 'unexpected argument "b"'],
    [['members', 'set', '--org', 'acme', 'bob'], 'give at least one --role'],
    [['explain', 'GET'], 'missing <path>'],
    [['audit', '--since', 'yesterday'], '--since takes epoch seconds'],
    [['api', 'FETCH', '/x'], 'unknown method'],
  ])('%j is a usage error: exit 2, one line on stderr, nothing on stdout', async (argv, message) => {
    const r = await cli(argv, { GATEHOUSE_TOKEN: SECRET });
    expect(r.code).toBe(EXIT.usage);
    expect(r.err).toContain(message);
    expect(r.out).toBe('');
  });

  it('--x=value and --x value are the same; options may come before the command', () => {
    const spec = { usage: 't', summary: 's', options: { table: { type: 'string' as const, description: 't' }, days: { type: 'string' as const, description: 'd' } } };
    expect(parseCommand(spec, ['--table=x', '--days', '3']).values).toMatchObject({ table: 'x', days: '3' });
    expect(() => parseCommand(spec, ['--table'])).toThrow(UsageError);
    expect(helpText(spec)).toMatch(/^usage: t \[options\]/);
  });

  it('every admin route has a command, and every route a command names exists', () => {
    const called = new Set(COMMANDS.flatMap((c) => c.routes));
    for (const route of called) expect(Object.keys(ADMIN_ROUTES), route).toContain(route);
    const missing = Object.keys(ADMIN_ROUTES).filter((r) => !called.has(r));
    expect(missing).toEqual([]);
  });
});

describe('gatehouse: requests, output and exit codes', () => {
  let api: Awaited<ReturnType<typeof server>>;
  let next: (s: Seen) => { status: number; body?: unknown; raw?: string; drop?: boolean };
  beforeAll(async () => {
    api = await server((s) => next(s));
  });
  afterAll(() => api.close());

  it('sends the credential as a bearer token and prints a person\'s view, --json, or --field', async () => {
    next = () => ({ status: 200, body: { items: [TOKEN_VIEW], nextCursor: 'c1' } });
    const human = await cli(['tokens', 'list', '--org', 'acme'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET });
    expect(human.code).toBe(EXIT.ok);
    expect(api.seen.at(-1)).toMatchObject({ method: 'GET', url: '/orgs/acme/tokens', headers: { authorization: `Bearer ${SECRET}` } });
    expect(human.out).toMatch(/^ID\s+NAME\s+KIND/);
    expect(human.out).toContain('AbCdEfGhIjKlMnOp  laptop');
    expect(human.out).toContain('--cursor c1');
    const json = await cli(['--json', 'tokens', 'list'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET });
    expect(JSON.parse(json.out)).toEqual({ items: [TOKEN_VIEW], nextCursor: 'c1' });
    const field = await cli(['tokens', 'list', '--field', 'items.0.id', '--field', 'nextCursor'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET });
    expect(field.out).toBe('AbCdEfGhIjKlMnOp\nc1\n');
    const none = await cli(['tokens', 'list', '--field', 'items.5.id'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET });
    expect(none.code).toBe(EXIT.refused);
  });

  it('--all follows nextCursor', async () => {
    next = (s) => ({ status: 200, body: s.url.includes('cursor=c1') ? { items: [{ ...TOKEN_VIEW, id: 'second' }] } : { items: [TOKEN_VIEW], nextCursor: 'c1' } });
    const r = await cli(['--json', 'tokens', 'list', '--all', '--limit', '1'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET });
    expect(JSON.parse(r.out).items.map((t: { id: string }) => t.id)).toEqual(['AbCdEfGhIjKlMnOp', 'second']);
    expect(api.seen.at(-1)!.url).toBe('/tokens?limit=1&cursor=c1');
  });

  it('an API error is exit 1 with its status and code; --json puts it on stderr as JSON', async () => {
    next = () => ({ status: 404, body: { error: { code: 'not-found', message: 'not found' } } });
    const r = await cli(['tokens', 'show', 'x'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET });
    expect(r).toMatchObject({ code: EXIT.refused, out: '' });
    expect(r.err).toBe('gatehouse: 404 not-found: not found\n');
    const j = await cli(['tokens', 'show', 'x', '--json'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET });
    expect(JSON.parse(j.err)).toEqual({ error: { status: 404, code: 'not-found', message: 'not found' } });
    // The gateway's own answers have no code: the CLI names them.
    next = () => ({ status: 403, body: { message: 'Forbidden' } });
    expect((await cli(['me'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET })).err).toBe('gatehouse: 403 forbidden: Forbidden\n');
    next = () => ({ status: 502, raw: '<html>bad gateway</html>' });
    expect((await cli(['me'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET })).code).toBe(EXIT.refused);
  });

  it('no answer at all is exit 3', async () => {
    const port = await freePort();
    const r = await cli(['me'], { GATEHOUSE_URL: `http://127.0.0.1:${port}`, GATEHOUSE_TOKEN: SECRET });
    expect(r.code).toBe(EXIT.unreachable);
    expect(r.err).toContain('connection refused');
  });

  it('configuration problems are exit 2: no credential, a credential with a newline, a bad URL', async () => {
    expect((await cli(['me'], { GATEHOUSE_URL: api.url })).err).toContain('no credential');
    expect((await cli(['me'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: `${SECRET}\n` })).code).toBe(EXIT.usage);
    expect((await cli(['me'], { GATEHOUSE_URL: 'ftp://x', GATEHOUSE_TOKEN: SECRET })).code).toBe(EXIT.usage);
    expect((await cli(['me', '--token', 'a', '--token-file', '/x'], { GATEHOUSE_URL: api.url })).code).toBe(EXIT.usage);
  });

  it('tokens create sends an Idempotency-Key and, when the answer is lost, retries with the same key', async () => {
    let n = 0;
    next = () => (++n === 1 ? { status: 0, drop: true } : { status: 201, body: { ...TOKEN_VIEW, token: 'gat_new' } });
    const r = await cli(['tokens', 'create', '--name', 'laptop', '--field', 'token'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET });
    expect(r).toMatchObject({ code: EXIT.ok, out: 'gat_new\n' });
    const [first, second] = api.seen.slice(-2);
    expect(first!.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(second!.headers['idempotency-key']).toBe(first!.headers['idempotency-key']);
    expect(JSON.parse(second!.body)).toEqual({ name: 'laptop' });
    // A refusal is not retried.
    n = 0;
    next = () => (++n, { status: 403, body: { error: { code: 'cannot-create-token', message: 'forbidden' } } });
    expect((await cli(['tokens', 'create', '--name', 'x'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET })).code).toBe(EXIT.refused);
    expect(n).toBe(1);
  });

  it('reads the credential from --token-file (or stdin) and role files from --file', async () => {
    next = () => ({ status: 201, body: { name: 'reader', displayName: null, builtIn: false, site: [], org: [], member: [], user: [], version: 'v' } });
    const r = await cli(['roles', 'put', 'reader', '--org', 'acme', '--file', '-', '--token', SECRET], { GATEHOUSE_URL: api.url }, '{"org":[{"resource":"project","action":"read"}]}');
    expect(r).toMatchObject({ code: 0, out: 'created role reader\n' });
    expect(api.seen.at(-1)).toMatchObject({ method: 'PUT', url: '/orgs/acme/roles/reader' });
    expect(JSON.parse(api.seen.at(-1)!.body)).toEqual({ org: [{ resource: 'project', action: 'read' }] });
    next = () => ({ status: 200, body: { id: 'alice', kind: 'user', siteRoles: [], orgs: [] } });
    const me = await cli(['me', '--token-file', '-'], { GATEHOUSE_URL: api.url }, `${SECRET}\n`);
    expect(me.code).toBe(0);
    expect(api.seen.at(-1)!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect((await cli(['roles', 'put', 'x', '--file', '-'], { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET }, 'not json')).code).toBe(EXIT.usage);
  });

  it('never shows the credential: not with --debug, --json, errors, or a credential passed where an argument belongs', async () => {
    const runs: Awaited<ReturnType<typeof cli>>[] = [];
    const env = { GATEHOUSE_URL: api.url, GATEHOUSE_TOKEN: SECRET };
    next = () => ({ status: 401, body: { message: 'Unauthorized' } });
    runs.push(await cli(['me', '--debug'], env), await cli(['me', '--debug', '--json'], env));
    next = () => ({ status: 500, body: { error: { code: 'internal-error', message: 'internal error' } } });
    runs.push(await cli(['tokens', 'create', '--name', 'x', '--debug', '--json'], env));
    runs.push(await cli(['me', '--debug'], { ...env, GATEHOUSE_TOKEN: `${SECRET} x` }));
    runs.push(await cli(['me', '--debug'], { GATEHOUSE_URL: `http://127.0.0.1:${await freePort()}`, GATEHOUSE_TOKEN: SECRET }));
    runs.push(await cli(['tokens', 'show', 'id', SECRET], env), await cli(['tokens', 'show', `--${SECRET}`], env), await cli([SECRET], env));
    runs.push(await cli(['explain', 'GET', '/x', '--credential-file', '-', '--debug'], env, SECRET));
    for (const r of runs) {
      expect(r.out + r.err).not.toContain(SECRET.slice(4, 30));
      expect(r.code).not.toBe(0);
    }
    expect(runs[0]!.err).toContain('authorization: Bearer [hidden]');
    // --credential-file sends it in the body, as asked, and shows it nowhere.
    expect(JSON.parse(api.seen.at(-1)!.body)).toMatchObject({ method: 'GET', path: '/x', credential: SECRET });
  });
});

describe('npx gatehouse from a clone', () => {
  it('runs the TypeScript through the repository\'s tsx: --help exits 0, a refused request exits 1 without echoing the credential', () => {
    const help = spawnSync('npx', ['gatehouse', 'tokens', 'create', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('usage: gatehouse tokens create --name <name> [options]');
    const refused = spawnSync('npx', ['gatehouse', 'me', '--debug'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '', GATEHOUSE_URL: 'http://127.0.0.1:9', GATEHOUSE_TOKEN: SECRET } });
    expect(refused.status).toBe(EXIT.unreachable);
    expect(refused.stdout + refused.stderr).not.toContain(SECRET.slice(4, 30));
  });

  it('global options are declared once', () => {
    for (const c of COMMANDS) for (const name of Object.keys(c.spec.options ?? {})) expect(GLOBAL_OPTIONS[name], `${c.path.join(' ')} --${name}`).toBeUndefined();
  });
});

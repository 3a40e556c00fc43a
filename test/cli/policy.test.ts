/**
 * `gatehouse policy …` without a stack: the policy file format (what pull writes is what
 * push, diff and test read; anything else is refused with exit 2 before a request is
 * sent), the offline `policy test` (exit 0 / 5 / 2), and the headers a push carries.
 * Requests go to a real HTTP server on loopback that answers as the admin API does;
 * test/e2e/cli-policy.test.ts runs the same commands against the real stack.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/client';
import { parsePolicyFile } from '../../cli/commands/policy';
import { run } from '../../cli/main';
import { ADMIN_SET_VERSION } from '../../core/policy/admin-set';

const SECRET = 'gat_SeCrEtIdSeCrEtId_SeCrEtSeCrEtSeCrEtSeCrEtSeCrEt000000';

interface Seen { method: string; url: string; headers: IncomingMessage['headers']; body: string }
interface Reply { status: number; body?: unknown; etag?: string }

let srv: Server;
let url: string;
let seen: Seen[];
let answer: (s: Seen) => Reply;
let dir: string;

beforeAll(async () => {
  srv = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += String(c);
    const s = { method: req.method!, url: req.url!, headers: req.headers, body };
    seen.push(s);
    const a = answer(s);
    res.writeHead(a.status, { 'content-type': 'application/json', ...(a.etag ? { etag: a.etag } : {}) });
    res.end(a.body === undefined ? '' : JSON.stringify(a.body));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-cli-'));
});
afterAll(async () => {
  await new Promise<void>((r) => srv.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  seen = [];
  answer = () => ({ status: 500, body: { error: { code: 'unexpected', message: 'no answer set' } } });
});

async function cli(argv: string[], stdin = '') {
  let out = '';
  let err = '';
  const code = await run(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), env: { GATEHOUSE_URL: url, GATEHOUSE_TOKEN: SECRET }, stdin: async () => stdin, sleep: async () => {}, now: () => Date.UTC(2026, 10, 22, 12) });
  return { code, out, err };
}

const file = (name: string, content: unknown) => {
  const f = join(dir, name);
  writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return f;
};

const member = (orgs: Record<string, string[]>, extra: Record<string, unknown> = {}) => ({ kind: 'user', id: 'alice', orgs, groups: ['platform'], ...extra });
const GET = (path: string) => ({ method: 'GET', path });
const DELETE = (path: string) => ({ method: 'DELETE', path });

/** The worked example of docs/policies.md: readable by org members, deletable by org admins, only for the platform group. */
const ROUTES = [
  { route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'org', action: 'read', org: '{orgId}' },
  { route: 'DELETE /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'delete', org: '{orgId}' },
];
const GATE = "'platform' in principal.groups";
const TESTS = [
  { name: 'a member reads', principal: member({ acme: ['org-member'] }), request: GET('/orgs/acme/projects/p1'), expect: 'allow' },
  { name: 'a member may not delete', principal: member({ acme: ['org-member'] }), request: DELETE('/orgs/acme/projects/p1'), expect: { decision: 'deny', code: 'no-permission' } },
  { name: 'an admin deletes', principal: member({ acme: ['org-admin'] }), request: DELETE('/orgs/acme/projects/p1'), expect: 'allow' },
  { name: 'not without the group', principal: member({ acme: ['org-admin'] }, { groups: ['eng'] }), request: DELETE('/orgs/acme/projects/p1'), expect: { decision: 'deny', code: 'gate-denied' } },
];
/** The set as `GET /policies/sets/{set}` answers it (with its read-only fields). */
const LIVE = { routes: ROUTES, gate: GATE, tests: TESTS, version: '7', warnings: [] };

describe('the policy file: what pull writes is what push, diff and test read', () => {
  it('pull writes { set, version, routes, gate, tests } from the answer and its ETag; test and push take it as is', async () => {
    answer = () => ({ status: 200, body: LIVE, etag: '"7"' });
    const out = join(dir, 'pulled.json');
    const pulled = await cli(['policy', 'pull', 'projects', '--out', out]);
    expect(pulled, pulled.err).toMatchObject({ code: EXIT.ok, out: `pulled policy set projects at version 7 into ${out} (2 routes, 4 tests)\n` });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['GET /policies/sets/projects']);
    const text = readFileSync(out, 'utf8');
    expect(Object.keys(JSON.parse(text))).toEqual(['set', 'version', 'routes', 'gate', 'tests']);
    expect(JSON.parse(text)).toEqual({ set: 'projects', version: '7', routes: ROUTES, gate: GATE, tests: TESTS });
    // Standard output holds the same document.
    expect((await cli(['policy', 'pull', 'projects'])).out).toBe(text);

    expect((await cli(['policy', 'test', '--file', out])).code).toBe(EXIT.ok);

    seen = [];
    answer = (s) => (s.method === 'PUT' ? { status: 200, body: { ...LIVE, version: '8' }, etag: '"8"' } : { status: 500 });
    const pushed = await cli(['policy', 'push', 'projects', '--file', out]);
    expect(pushed, pushed.err).toMatchObject({ code: EXIT.ok, out: `replaced policy set projects: version 8; ${out} now records version 8\n` });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'PUT', url: '/policies/sets/projects', headers: { 'if-match': '"7"' } });
    expect(seen[0]!.headers['if-none-match']).toBeUndefined();
    // Only what a write takes: never the file's set, version or test roles.
    expect(JSON.parse(seen[0]!.body)).toEqual({ routes: ROUTES, gate: GATE, tests: TESTS });
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ set: 'projects', version: '8', routes: ROUTES, gate: GATE, tests: TESTS });
  });

  it('a pulled copy of the built-in admin set (version builtin-…) reads back', async () => {
    answer = () => ({ status: 200, body: { routes: [{ route: 'GET /me', resource: 'me', action: 'read', public: true, condition: 'principal.kind != "anonymous"' }], gate: null, tests: [], version: ADMIN_SET_VERSION, warnings: [] }, etag: `"${ADMIN_SET_VERSION}"` });
    const out = join(dir, 'admin.json');
    expect((await cli(['policy', 'pull', 'admin', '--out', out])).code).toBe(EXIT.ok);
    expect(parsePolicyFile(readFileSync(out, 'utf8'), 'admin.json')).toMatchObject({ set: 'admin', version: ADMIN_SET_VERSION });
    expect((await cli(['policy', 'test', '--file', out])).out).toBe('no tests in ' + JSON.stringify(out) + '\n');
  });

  it('pull keeps the custom roles of the file it replaces, and refuses to drop roles it cannot read', async () => {
    answer = () => ({ status: 200, body: LIVE, etag: '"7"' });
    const roles = [{ name: 'project-reader', orgId: 'acme', org: [{ resource: 'project', action: 'read' }] }];
    const out = file('with-roles.json', { set: 'projects', version: '6', routes: [], gate: null, tests: [], roles });
    expect((await cli(['policy', 'pull', 'projects', '--out', out])).out).toContain('kept 1 roles');
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ version: '7', routes: ROUTES, roles });
    const badRoles = JSON.stringify({ routes: [], roles: [{ name: 'X' }] });
    const bad = file('bad-roles.json', badRoles);
    const r = await cli(['policy', 'pull', 'projects', '--out', bad]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.err).toContain('roles that would be lost');
    expect(readFileSync(bad, 'utf8')).toBe(badRoles);
  });

  const valid = { set: 'projects', version: '7', routes: ROUTES, gate: GATE, tests: TESTS };
  it.each([
    ['not JSON', '{ routes: [] }', 'is not JSON'],
    ['not an object', '[]', 'must hold a JSON object'],
    ['an unknown field (a GET answer\'s warnings)', { ...valid, warnings: [] }, 'unknown field(s) warnings'],
    ['a version that is a number', { ...valid, version: 7 }, 'version must be the version string pulled'],
    ['a version with a quote', { ...valid, version: '7"' }, 'version must be the version string pulled'],
    ['a bad set name', { ...valid, set: 'Projects' }, 'set must be a policy set name'],
    ['no routes', { set: 'projects', version: '7', gate: null, tests: [] }, 'routes is missing'],
    ['a malformed route', { ...valid, routes: [{ route: 'FETCH /x', resource: 'x', action: 'read' }] }, 'invalid-route'],
    ['a rule with an unknown field', { ...valid, routes: [{ ...ROUTES[0], roles: ['org-admin'] }] }, 'invalid-route'],
    ['two rules of one route shape', { ...valid, routes: [ROUTES[0], { ...ROUTES[0], route: 'GET /orgs/{o}/projects/{p}', org: '{o}' }] }, 'duplicate-route'],
    ['a condition that is not allowed', { ...valid, routes: [{ ...ROUTES[0], condition: 'principal.constructor' }] }, 'invalid-expression'],
    ['a gate that does not parse', { ...valid, gate: "'platform' in" }, 'invalid-expression'],
    ['a test without expect', { ...valid, tests: [{ name: 'x', principal: { kind: 'anonymous' }, request: GET('/x') }] }, 'invalid-tests'],
    ['a role that is built in', { ...valid, roles: [{ name: 'org-admin', org: [] }] }, 'invalid-role-name'],
  ])('%s is refused with exit 2 by push, diff and test, before any request', async (_what, content, message) => {
    const f = file('bad.json', content);
    const before = readFileSync(f, 'utf8');
    answer = () => ({ status: 200, body: LIVE, etag: '"7"' });
    for (const argv of [['policy', 'push', 'projects', '--file', f], ['policy', 'push', 'projects', '--file', f, '--force'], ['policy', 'diff', 'projects', '--file', f], ['policy', 'test', '--file', f]]) {
      const r = await cli(argv);
      expect({ argv: argv.join(' '), code: r.code }).toEqual({ argv: argv.join(' '), code: EXIT.usage });
      expect(r.err).toContain(message);
      expect(r.out).toBe('');
    }
    expect(seen).toEqual([]);
    expect(readFileSync(f, 'utf8')).toBe(before);
  });
});

describe('policy test, offline', () => {
  it('exit 0 when every test passes; nothing is sent anywhere', async () => {
    const r = await cli(['policy', 'test', '--file', file('ok.json', { routes: ROUTES, gate: GATE, tests: TESTS })]);
    expect(r).toMatchObject({ code: EXIT.ok, err: '' });
    expect(r.out).toBe('ok    a member reads\nok    a member may not delete\nok    an admin deletes\nok    not without the group\n4 passed, 0 failed\n');
    expect(seen).toEqual([]);
  });

  it('exit 5 when one fails, with the expected and the actual decision and reason; --json lists the results', async () => {
    // Without the gate, the admin outside the platform group is allowed: the test says deny.
    const f = file('fails.json', { routes: ROUTES, gate: null, tests: TESTS });
    const r = await cli(['policy', 'test', '--file', f]);
    expect(r.code).toBe(EXIT.testsFailed);
    expect(r.out).toContain('FAIL  not without the group: expected deny (gate-denied), got allow (allow) at DELETE /orgs/{orgId}/projects/{projectId}\n');
    expect(r.out).toMatch(/3 passed, 1 failed\n$/);
    const j = await cli(['policy', 'test', '--file', f, '--json']);
    expect(j.code).toBe(EXIT.testsFailed);
    expect(JSON.parse(j.out)).toMatchObject({ passed: 3, failed: 1, results: [{ passed: true }, { passed: true }, { passed: true }, { name: 'not without the group', passed: false, expected: { decision: 'deny', code: 'gate-denied' }, actual: { decision: 'allow', code: 'allow' } }] });
    // A reason code that differs fails too, even with the same decision.
    const code = await cli(['policy', 'test', '--file', file('code.json', { routes: ROUTES, tests: [{ ...TESTS[1]!, expect: { decision: 'deny', code: 'not-member' } }] })]);
    expect(code.code).toBe(EXIT.testsFailed);
    expect(code.out).toContain('expected deny (not-member), got deny (no-permission)');
  });

  it('custom roles come from the file\'s roles; a role that is neither built in nor there is exit 2, never a deny', async () => {
    const routes = [{ route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}' }];
    const tests = [{ name: 'a lister lists', principal: member({ acme: ['project-lister'] }), request: GET('/orgs/acme/projects'), expect: 'allow' }];
    const roles = [{ name: 'project-lister', orgId: 'acme', org: [{ resource: 'project', action: 'list' }] }];
    expect((await cli(['policy', 'test', '--file', file('roles.json', { routes, tests, roles })])).code).toBe(EXIT.ok);
    // The same role defined for another org is not one acme members can hold.
    const elsewhere = await cli(['policy', 'test', '--file', file('roles-elsewhere.json', { routes, tests, roles: [{ ...roles[0], orgId: 'globex' }] })]);
    expect(elsewhere.code).toBe(EXIT.usage);
    const missing = await cli(['policy', 'test', '--file', file('no-roles.json', { routes, tests })]);
    expect(missing).toMatchObject({ code: EXIT.usage, out: '' });
    expect(missing.err).toContain('unknown-role: tests[0].principal.orgs.acme[0]: unknown role "project-lister" in org acme');
  });

  it.each([
    ['an unknown kind', { kind: 'robot', id: 'r' }, 'tests[0].principal.kind'],
    ['an unknown field', { kind: 'user', id: 'alice', role: 'org-admin' }, 'unknown field(s) role'],
    ['an org token without its org', { kind: 'token', tokenKind: 'org', id: 't1' }, 'tests[0].principal.orgId'],
    ['a personal token without its owner', { kind: 'token', tokenKind: 'personal', id: 't1' }, 'tests[0].principal.ownerId'],
    ['a scope that is not resource:action', { kind: 'token', tokenKind: 'site', id: 't1', scopes: ['everything'] }, 'invalid-scope'],
    ['an unknown site role', { kind: 'user', id: 'alice', siteRoles: ['site-admn'] }, 'unknown site role "site-admn"'],
  ])('a malformed principal (%s) is exit 2 naming it', async (_what, principal, message) => {
    const r = await cli(['policy', 'test', '--file', file('principal.json', { routes: ROUTES, tests: [{ name: 't', principal, request: GET('/orgs/acme/projects/p1'), expect: 'deny' }] })]);
    expect(r).toMatchObject({ code: EXIT.usage, out: '' });
    expect(r.err).toContain(message);
  });

  it('reads the file from standard input with --file -', async () => {
    const r = await cli(['policy', 'test', '--file', '-'], JSON.stringify({ routes: ROUTES, gate: GATE, tests: TESTS }));
    expect(r.code).toBe(EXIT.ok);
  });
});

describe('push, diff and bind: the preconditions they send', () => {
  it('a stale push is exit 4 and leaves the file alone; --force is If-Match: *, --create If-None-Match: *', async () => {
    const f = file('stale.json', { set: 'projects', version: '3', routes: ROUTES, gate: null, tests: [] });
    const before = readFileSync(f, 'utf8');
    answer = () => ({ status: 412, body: { error: { code: 'version-mismatch', message: 'policy set projects is at version 4' } } });
    const r = await cli(['policy', 'push', 'projects', '--file', f]);
    expect(r).toMatchObject({ code: EXIT.conflict, out: '' });
    expect(r.err).toContain('412 version-mismatch: policy set projects changed since');
    expect(readFileSync(f, 'utf8')).toBe(before);

    answer = () => ({ status: 200, body: { routes: ROUTES, gate: null, tests: [], version: '5', warnings: [] }, etag: '"5"' });
    expect((await cli(['policy', 'push', 'projects', '--file', f, '--force'])).code).toBe(EXIT.ok);
    expect(seen.at(-1)!.headers).toMatchObject({ 'if-match': '*' });
    answer = () => ({ status: 201, body: { routes: ROUTES, gate: null, tests: [], version: '1', warnings: [] }, etag: '"1"' });
    const created = await cli(['policy', 'push', 'partner', '--file', f, '--create']);
    expect(created.out).toMatch(/^created policy set partner: version 1/);
    expect(seen.at(-1)).toMatchObject({ url: '/policies/sets/partner', headers: { 'if-none-match': '*' } });
    expect(seen.at(-1)!.headers['if-match']).toBeUndefined();
    expect(JSON.parse(readFileSync(f, 'utf8'))).toMatchObject({ set: 'partner', version: '1' });
    // A file pulled from one set is not pushed over another by mistake, nor without a version.
    expect((await cli(['policy', 'push', 'other', '--file', f])).code).toBe(EXIT.usage);
    expect((await cli(['policy', 'push', 'projects', '--file', file('nover.json', { routes: [] })])).code).toBe(EXIT.usage);
  });

  it('diff: exit 0 with the same content, 1 with the change shown', async () => {
    answer = () => ({ status: 200, body: LIVE, etag: '"7"' });
    const same = await cli(['policy', 'diff', 'projects', '--file', file('same.json', { set: 'projects', version: '7', routes: [...ROUTES].reverse(), gate: GATE, tests: TESTS })]);
    expect(same).toMatchObject({ code: EXIT.ok });
    expect(same.out).toContain('no differences');
    const changed = await cli(['policy', 'diff', 'projects', '--file', file('changed.json', { set: 'projects', version: '6', routes: [ROUTES[0], { route: 'POST /orgs/{orgId}/projects', resource: 'project', action: 'create', org: '{orgId}' }], gate: null, tests: TESTS })]);
    expect(changed.code).toBe(1);
    expect(changed.out).toContain('live version 7');
    expect(changed.out).toContain('(the set changed since the file was pulled)');
    expect(changed.out).toContain('  + POST /orgs/{orgId}/projects  project:create org={orgId}\n');
    expect(changed.out).toContain('  - DELETE /orgs/{orgId}/projects/{projectId}  project:delete org={orgId}\n');
    expect(changed.out).toContain(`gate: ${JSON.stringify(GATE)} -> (none)`);
  });

  it('bind creates with If-None-Match: * and rebinds with the If-Match of the binding read', async () => {
    let bound: string | undefined;
    answer = (s) => {
      if (s.method === 'GET') return bound ? { status: 200, body: { apiId: 'a1b2c3d4e5', set: bound, version: '2' }, etag: '"2"' } : { status: 404, body: { error: { code: 'binding-not-found', message: 'unbound' } } };
      bound = JSON.parse(s.body).set;
      return { status: 201, body: { apiId: 'a1b2c3d4e5', set: bound, version: '1' }, etag: '"1"' };
    };
    expect((await cli(['policy', 'bind', 'a1b2c3d4e5', 'partner'])).out).toBe('bound API a1b2c3d4e5 to policy set partner (was unbound: default)\n');
    expect(seen.at(-1)).toMatchObject({ method: 'PUT', url: '/policies/apis/a1b2c3d4e5', headers: { 'if-none-match': '*' } });
    expect((await cli(['policy', 'bind', 'a1b2c3d4e5', 'other'])).code).toBe(EXIT.ok);
    expect(seen.at(-1)).toMatchObject({ method: 'PUT', headers: { 'if-match': '"2"' } });
  });
});

describe('the policy docs', () => {
  const ROOT = resolve(import.meta.dirname, '../..');
  /** GitHub's anchors for a page's headings (outside code blocks). */
  const anchors = (text: string) => new Set([...text.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,4} (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));

  it('point nowhere outside the repository, and every link and anchor they name exists', () => {
    for (const page of ['docs/policies.md', 'docs/cli.md', 'docs/configuration.md', 'README.md']) {
      const text = readFileSync(join(ROOT, page), 'utf8');
      // Loopback addresses of the local stack are the only URLs.
      expect([...text.matchAll(/https?:\/\/[^\s)'"`]+/g)].map((m) => m[0]).filter((u) => !/^http:\/\/127\.0\.0\.1[:/]/.test(u) && !/example\.(com|org)/.test(u)), page).toEqual([]);
      for (const m of text.matchAll(/\]\(([^)#\s]*)(?:#([^)\s]+))?\)/g)) {
        const target = m[1] ? join(dirname(join(ROOT, page)), m[1]) : join(ROOT, page);
        expect(existsSync(target), `${page}: ${m[0]}`).toBe(true);
        expect(target.startsWith(ROOT), `${page}: ${m[0]}`).toBe(true);
        if (m[2]) expect(anchors(readFileSync(target, 'utf8')), `${page}: ${m[0]}`).toContain(m[2]);
      }
    }
  });
});

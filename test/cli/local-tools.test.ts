/**
 * `npm run token` and `npm run bootstrap-admin` share the CLI's parser: the bugs of their
 * hand-written parsing stay fixed, and bootstrap-admin says why it failed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localIssuerCandidates, parseClaim, parseGroups } from '../../local/oidc-client';
import { describeFailure, NO_ROUTES_NOTE, parseArgs } from '../../scripts/bootstrap-admin';

const ROOT = resolve(import.meta.dirname, '../..');
const stackTrace = /^\s+at\s/m;

/** A process environment without AWS or gatehouse settings (and no AWS config files). */
function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && !k.startsWith('GATEHOUSE_') && k !== 'NODE_OPTIONS' && !k.startsWith('VITEST')) env[k] = v;
  const home = mkdtempSync(join(tmpdir(), 'gatehouse-home-'));
  return { ...env, HOME: home, AWS_CONFIG_FILE: join(home, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'), ...extra };
}

const npm = (args: string[], env: NodeJS.ProcessEnv) => spawnSync('npm', ['run', '-s', ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 90_000 });

describe('npm run bootstrap-admin', () => {
  it('--help prints the usage on stdout and exits 0', () => {
    const r = npm(['bootstrap-admin', '--', '--help'], bareEnv());
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run bootstrap-admin -- \[options\]/);
    expect(r.stdout).toContain('--no-routes');
  });

  it('takes --table=x as well as --table x, and keeps its documented flags', () => {
    expect(parseArgs(['--table=t1', '--user=u1', '--days=7'], {})).toEqual({ tableName: 't1', userId: 'u1', days: 7, notes: [] });
    expect(parseArgs(['--table', 't1', '--no-routes'], {})).toEqual({ tableName: 't1', days: 30, notes: [NO_ROUTES_NOTE] });
    expect(parseArgs(['--table', '--user', 'u'], {})).toMatch(/--table needs a value/);
    expect(parseArgs(['-h'], {})).toMatchObject({ help: expect.stringContaining('usage:') });
  });

  it('a failure prints the underlying AWS SDK error in one line and exits 1 (no region configured)', () => {
    const r = npm(['bootstrap-admin', '--', '--table', 'gatehouse'], bareEnv());
    expect(r.status).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('bootstrap-admin:'));
    expect(lines).toEqual([expect.stringMatching(/^bootstrap-admin: failed: .*Region is missing/)]);
    expect(r.stderr).not.toMatch(stackTrace);
    expect(r.stdout).toBe('');
  });

  it('describes a cause chain in one line', () => {
    const sdk = Object.assign(new Error('connect ECONNREFUSED\n127.0.0.1:9'), { name: 'TimeoutError' });
    expect(describeFailure(Object.assign(new Error('DynamoDB PutItem token failed: TimeoutError'), { name: 'StoreError', cause: sdk }))).toBe(
      'StoreError: DynamoDB PutItem token failed: TimeoutError <- caused by TimeoutError: connect ECONNREFUSED 127.0.0.1:9',
    );
  });
});

describe('npm run token', () => {
  it('--user --email a@b.c is a usage error, not a token for the user "--email"', () => {
    const r = npm(['token', '--', '--user', '--email', 'a@b.c'], bareEnv({ GATEHOUSE_OIDC_URL: 'http://127.0.0.1:9' }));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--user needs a value/);
    expect(r.stdout).toBe('');
  });

  it('--help exits 0; a bad --claim or --groups is a usage error', () => {
    expect(npm(['token', '--', '--help'], bareEnv()).status).toBe(0);
    expect(npm(['token', '--', '--user', 'a', '--claim', 'sub=root'], bareEnv()).stderr).toMatch(/sub is set by the issuer/);
    expect(npm(['token', '--', '--user', 'a', '--groups', 'a b'], bareEnv()).status).toBe(2);
  });

  it('claims are JSON when they parse, strings otherwise; groups split on commas', () => {
    expect(parseClaim('level=3')).toEqual({ level: 3 });
    expect(parseClaim('beta=true')).toEqual({ beta: true });
    expect(parseClaim('teams=["a","b"]')).toEqual({ teams: ['a', 'b'] });
    expect(parseClaim('tier=gold')).toEqual({ tier: 'gold' });
    expect(parseClaim('note=a=b')).toEqual({ note: 'a=b' });
    expect(() => parseClaim('=x')).toThrow(/key=value/);
    for (const reserved of ['iss', 'aud', 'exp', 'client_id']) expect(() => parseClaim(`${reserved}=x`)).toThrow(/set by the issuer/);
    expect(parseGroups(['platform,eng', 'eng', 'ops'])).toEqual(['platform', 'eng', 'ops']);
  });

  it('looks for the issuer where npm start puts it, persistent or in memory', () => {
    expect(localIssuerCandidates({ env: {} })).toEqual(['http://127.0.0.1:3001']);
    expect(localIssuerCandidates({ env: { PORT: '4000' } })).toEqual(['http://127.0.0.1:4001']);
    expect(localIssuerCandidates({ env: { GATEHOUSE_OIDC_PORT: '5000', PORT: '4000' } })).toEqual(['http://127.0.0.1:5000']);
    expect(localIssuerCandidates({ fromDataDir: 'http://127.0.0.1:7001', env: {} })).toEqual(['http://127.0.0.1:7001', 'http://127.0.0.1:3001']);
    expect(localIssuerCandidates({ explicit: 'http://x:1/', fromDataDir: 'http://127.0.0.1:7001', env: {} })).toEqual(['http://x:1']);
  });
});

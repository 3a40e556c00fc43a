/**
 * `npm run token` is a small client of the running local issuer: it must not load the
 * issuer itself (`oidc-provider`, with its Node-version warnings and start-up cost).
 */
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

function withoutIssuer(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.GATEHOUSE_OIDC_URL;
  return env;
}

describe('npm run token', () => {
  it('imports nothing from oidc-provider', async () => {
    const result = await build({
      entryPoints: [resolve(ROOT, 'local/token.ts')], bundle: true, platform: 'node', format: 'esm', write: false, metafile: true, logLevel: 'silent', packages: 'external',
    });
    const external = Object.values(result.metafile.inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path));
    const local = Object.keys(result.metafile.inputs);
    expect(local).toContain('local/oidc-client.ts');
    expect(local).not.toContain('local/oidc.ts');
    expect(external.filter((p) => p.startsWith('oidc-provider'))).toEqual([]);
  });

  it('without a running stack: one line, exit 1, no stack trace and no oidc-provider warning', () => {
    const r = spawnSync('npm', ['run', '-s', 'token', '--', '--user', 'alice'], {
      cwd: ROOT, encoding: 'utf8', timeout: 60_000,
      env: { ...withoutIssuer(), GATEHOUSE_DATA_DIR: resolve(ROOT, '.gatehouse-token-test-none'), NODE_OPTIONS: '' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^gatehouse: no local issuer found/m);
    expect(r.stderr).not.toMatch(/^\s+at\s/m);
    expect(r.stderr).not.toMatch(/oidc-provider/i);
  });

  it('without --user: usage, exit 2', () => {
    const r = spawnSync('npm', ['run', '-s', 'token'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage: npm run token -- --user <id>/);
  });
});

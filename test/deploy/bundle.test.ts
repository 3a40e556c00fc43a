import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const HANDLERS = ['functions/authorizer/rest.ts', 'functions/authorizer/http.ts', 'functions/authorizer/websocket.ts', 'functions/tokens.ts', 'functions/invitations.ts', 'functions/admin.ts'];

describe('Lambda bundles', () => {
  it('every handler bundles for Node.js 22 and imports cleanly in a bare process (no node_modules, no I/O at import)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bundles-'));
    for (const entry of HANDLERS) {
      const out = join(dir, entry.replace(/\//g, '_').replace(/\.ts$/, '.mjs'));
      await build({
        entryPoints: [resolve(entry)], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node22', minify: true,
        mainFields: ['module', 'main'], banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }, logLevel: 'error',
      });
      expect(statSync(out).size).toBeLessThan(2 * 1024 * 1024);
      const code = `const m = await import(${JSON.stringify('file://' + out)}); if (typeof m.handler !== 'function') { console.error('no handler'); process.exit(3); }`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: dir, env: { PATH: process.env.PATH ?? '', GATEHOUSE_TABLE: 'gatehouse-test', AWS_REGION: 'us-east-1' }, encoding: 'utf8', timeout: 20_000 });
      expect(r.status, `${entry}: ${r.stderr}`).toBe(0);
    }
  }, 120_000);

  it('a bad configuration fails at import (cold start), naming the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bundles-'));
    const out = join(dir, 'rest.mjs');
    await build({ entryPoints: [resolve('functions/authorizer/rest.ts')], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node22', mainFields: ['module', 'main'], banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }, logLevel: 'error' });
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify('file://' + out)})`], {
      cwd: dir, env: { PATH: process.env.PATH ?? '', GATEHOUSE_ISSUERS: '[{"issuer":"x","audience":"a","jwksUri":"http://idp.example.com/jwks"}]' }, encoding: 'utf8', timeout: 20_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('GATEHOUSE_ISSUERS[0].jwksUri');
  }, 60_000);
});

import { build, type Metafile } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS, handlerModule, lambdaEsbuildOptions } from '../../infra/handlers';

/** Handler modules, from the same list `sst.config.ts` deploys (`functions/x.handler` -> `functions/x.ts`). */
const HANDLERS = [...new Set(Object.values(FUNCTIONS).map((f) => handlerModule(f.handler)))];

/**
 * The AWS SDK's optional signers, required inside try/catch only for SigV4a (multi-region
 * access points), which DynamoDB never uses; the Lambda runtime does not ship them either.
 */
const OPTIONAL = new Set(['@aws-sdk/signature-v4-crt', '@aws-sdk/signature-v4a']);

/** Builds `entry` as SST deploys it (infra/handlers.ts) into a new folder: `bundle.mjs` and its chunks. */
async function bundle(entry: string, overrides: { minify?: boolean } = {}): Promise<{ dir: string; out: string; metafile: Metafile }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bundle-'));
  const { metafile } = await build({ ...lambdaEsbuildOptions(resolve(entry), dir), metafile: true, ...overrides });
  return { dir, out: join(dir, 'bundle.mjs'), metafile };
}

/**
 * Preloaded into the child: any network connection, DNS lookup, fetch or child process
 * started while (or shortly after) the module is imported is recorded, and the child
 * exits 4 naming it. Import must build the runtime (config, clients, caches) and nothing more.
 */
const GUARD = `
import net from 'node:net'; import dns from 'node:dns'; import cp from 'node:child_process';
const seen = [];
const trap = (what) => function () { seen.push(what); throw new Error('I/O at import: ' + what); };
net.Socket.prototype.connect = trap('net.connect');
dns.lookup = trap('dns.lookup'); dns.promises.lookup = trap('dns.promises.lookup');
globalThis.fetch = trap('fetch');
for (const k of ['spawn', 'exec', 'execFile', 'fork', 'spawnSync', 'execSync', 'execFileSync']) cp[k] = trap('child_process.' + k);
globalThis.__gatehouseIo = seen;
`;

const importer = (file: string) => `
const m = await import(${JSON.stringify('file://' + file)});
if (typeof m.handler !== 'function') { console.error('no handler export'); process.exit(3); }
await new Promise((r) => setTimeout(r, 200));
if (globalThis.__gatehouseIo.length) { console.error('I/O at import: ' + globalThis.__gatehouseIo.join(', ')); process.exit(4); }
`;

describe('Lambda bundles', () => {
  it('the list covers every handler module of DESIGN §1', () => {
    expect(HANDLERS.sort()).toEqual([
      'functions/admin.ts', 'functions/authorizer/http.ts', 'functions/authorizer/rest.ts',
      'functions/authorizer/websocket.ts', 'functions/invitations.ts', 'functions/tokens.ts',
    ]);
  });

  it.each(HANDLERS)('%s bundles for Node.js 22 and imports cleanly in a bare process (no node_modules, no I/O at import)', async (entry) => {
    const { dir, out, metafile } = await bundle(entry);
    const files = readdirSync(dir).filter((f) => f.endsWith('.mjs'));
    expect(files).toContain('bundle.mjs');
    expect(files.reduce((bytes, f) => bytes + statSync(join(dir, f)).size, 0)).toBeLessThan(2 * 1024 * 1024);

    // Nothing loaded at runtime but Node's own modules and the bundle's own files: nothing else would resolve on Lambda.
    const imports = Object.values(metafile.outputs).flatMap((o) => o.imports);
    expect(imports.filter((i) => i.external && !isBuiltin(i.path) && !OPTIONAL.has(i.path)).map((i) => i.path), entry).toEqual([]);
    expect(imports.filter((i) => !i.external && !files.includes(basename(i.path))).map((i) => i.path), entry).toEqual([]);

    const guard = join(mkdtempSync(join(tmpdir(), 'gatehouse-guard-')), 'guard.mjs');
    writeFileSync(guard, GUARD);
    // GATEHOUSE_TABLE must be a valid DynamoDB name (3..255 characters): "x" fails the cold start, by design.
    const r = spawnSync(process.execPath, ['--import', 'file://' + guard, '--input-type=module', '-e', importer(out)], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', GATEHOUSE_TABLE: 'gatehouse-test', AWS_REGION: 'us-east-1' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status, `${entry}: ${r.stderr}`).toBe(0);
  }, 60_000);

  it('the I/O guard catches a module that connects at import', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bundle-'));
    const bad = join(dir, 'bad.mjs');
    writeFileSync(bad, "import net from 'node:net'; try { net.connect(9, '127.0.0.1'); } catch {} export const handler = () => {};");
    const guard = join(dir, 'guard.mjs');
    writeFileSync(guard, GUARD);
    const r = spawnSync(process.execPath, ['--import', 'file://' + guard, '--input-type=module', '-e', importer(bad)], { cwd: dir, env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(4);
    expect(r.stderr).toContain('net.connect');
  });

  it('a bad configuration fails at import (cold start), naming the field', async () => {
    const { dir, out } = await bundle('functions/authorizer/rest.ts', { minify: false });
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify('file://' + out)})`], {
      cwd: dir, env: { PATH: process.env.PATH ?? '', GATEHOUSE_ISSUERS: '[{"issuer":"x","audience":"a","jwksUri":"http://idp.example.com/jwks"}]' }, encoding: 'utf8', timeout: 20_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('GATEHOUSE_ISSUERS[0].jwksUri');
  }, 60_000);
});

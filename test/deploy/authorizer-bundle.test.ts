import { build, type Metafile } from 'esbuild';
import { relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The authorizers' bundles carry no admin code (issue 14: their cold start is compared
 * with a bare DynamoDB client + jose bundle). These modules are the admin side: the
 * repositories' writes, the admin services and their HTTP layer, the admin runtime.
 */
const ADMIN_MODULES = [
  'functions/runtime.ts',
  'functions/apps.ts',
  'core/store/dynamo/index.ts',
  'core/store/dynamo/policy.ts',
  'core/store/dynamo/tokens.ts',
  'core/store/dynamo/users.ts',
  'core/store/dynamo/orgs.ts',
  'core/store/dynamo/audit.ts',
  'core/store/dynamo/invitations.ts',
  'core/store/dynamo/idempotency.ts',
  'core/policy/policy-history.ts',
  'core/policy/policy-diff.ts',
  'core/http/api.ts',
  'core/admin/policies.ts',
  'core/tokens/service.ts',
  'core/invitations/service.ts',
];

async function inputs(entry: string): Promise<string[]> {
  const out = await build({
    entryPoints: [resolve(entry)], bundle: true, write: false, metafile: true, outfile: 'out.mjs',
    platform: 'node', format: 'esm', target: 'node22', minify: true, mainFields: ['module', 'main'], logLevel: 'error',
  });
  const meta: Metafile = out.metafile;
  return Object.values(meta.outputs).flatMap((o) => Object.keys(o.inputs)).map((p) => relative(process.cwd(), resolve(p)));
}

describe('authorizer bundles', () => {
  it.each(['functions/authorizer/rest.ts', 'functions/authorizer/http.ts', 'functions/authorizer/websocket.ts'])('%s holds none of the admin side', async (entry) => {
    const bundled = await inputs(entry);
    expect(bundled).toContain('core/store/dynamo/policy-read.ts');
    expect(bundled.filter((p) => ADMIN_MODULES.includes(p) || p.includes('node_modules/zod/'))).toEqual([]);
  }, 60_000);

  it('the check sees admin modules where they are (the tokens function)', async () => {
    const bundled = await inputs('functions/tokens.ts');
    expect(bundled).toEqual(expect.arrayContaining(['functions/runtime.ts', 'core/store/dynamo/tokens.ts', 'core/tokens/service.ts', 'core/http/api.ts']));
  }, 60_000);
});

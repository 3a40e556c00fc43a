import { build, type Metafile } from 'esbuild';
import { relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lambdaEsbuildOptions, loadedAtImport } from '../../infra/handlers';

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

/** The outputs of `entry` built as SST deploys it (infra/handlers.ts), unwritten. */
async function outputs(entry: string): Promise<Metafile['outputs']> {
  const out = await build({ ...lambdaEsbuildOptions(resolve(entry), resolve('dist/unwritten')), write: false, metafile: true });
  return out.metafile.outputs;
}

const rel = (p: string) => relative(process.cwd(), resolve(p));

/** The source files bundled into `outs`, as repository paths. */
const inputsOf = (outs: Metafile['outputs'], files = Object.keys(outs)): string[] => files.flatMap((f) => Object.keys(outs[f]!.inputs)).map(rel);

describe('authorizer bundles', () => {
  it.each(['functions/authorizer/rest.ts', 'functions/authorizer/http.ts', 'functions/authorizer/websocket.ts'])('%s holds none of the admin side', async (entry) => {
    const bundled = inputsOf(await outputs(entry));
    expect(bundled).toContain('core/store/dynamo/policy-read.ts');
    expect(bundled.filter((p) => ADMIN_MODULES.includes(p) || p.includes('node_modules/zod/'))).toEqual([]);
  }, 60_000);

  it('the check sees admin modules where they are (the tokens function)', async () => {
    const bundled = inputsOf(await outputs('functions/tokens.ts'));
    expect(bundled).toEqual(expect.arrayContaining(['functions/runtime.ts', 'core/store/dynamo/tokens.ts', 'core/tokens/service.ts', 'core/http/api.ts']));
  }, 60_000);

  it.each(['functions/authorizer/rest.ts', 'functions/authorizer/http.ts', 'functions/authorizer/websocket.ts'])('%s: jexl is a chunk of its own, not loaded at import (core/policy/expression.ts)', async (entry) => {
    const outs = await outputs(entry);
    const atImport = inputsOf(outs, loadedAtImport(outs));
    expect(atImport).toContain('core/policy/expression.ts');
    expect(atImport.filter((p) => p.includes('node_modules/jexl/'))).toEqual([]);
    expect(inputsOf(outs)).toContain('node_modules/jexl/dist/Jexl.js');
  }, 60_000);
});

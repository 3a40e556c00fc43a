/**
 * The Lambda functions: SST logical name, handler (`<module without .ts>.handler`)
 * and any setting of their own. The admin API's authorizer is the HTTP authorizer
 * module deployed a second time, pinned to the built-in `admin` policy set
 * (`GATEHOUSE_POLICY_SET`), so no policy set a customer edits can decide the admin API,
 * and answering with IAM policies, so a refused credential is a 401 (a simple answer can
 * only say 403). Plain data without SST globals, so `sst.config.ts`
 * (through `infra/functions.ts`) and the tests (which bundle each handler) share it.
 */
export const FUNCTIONS = {
  rest: { name: 'RestAuthorizer', handler: 'functions/authorizer/rest.handler' },
  http: { name: 'HttpAuthorizer', handler: 'functions/authorizer/http.handler', environment: { GATEHOUSE_HTTP_RESPONSE: 'simple' } },
  adminAuthorizer: { name: 'AdminAuthorizer', handler: 'functions/authorizer/http.handler', environment: { GATEHOUSE_HTTP_RESPONSE: 'iam', GATEHOUSE_POLICY_SET: 'admin' } },
  websocket: { name: 'WebSocketAuthorizer', handler: 'functions/authorizer/websocket.handler' },
  tokens: { name: 'Tokens', handler: 'functions/tokens.handler' },
  invitations: { name: 'Invitations', handler: 'functions/invitations.handler' },
  admin: { name: 'Admin', handler: 'functions/admin.handler' },
} as const satisfies Record<string, FunctionSpec>;

export interface FunctionSpec {
  name: string;
  handler: string;
  environment?: Record<string, string>;
}

export type FunctionKey = keyof typeof FUNCTIONS;

/** The module file of a handler string: `functions/tokens.handler` -> `functions/tokens.ts`. */
export function handlerModule(handler: string): string {
  return handler.replace(/\.handler$/, '.ts');
}

/**
 * The gatehouse HTTP authorizer as the admin API uses it, and as the README recommends
 * for any HTTP API. A simple answer is a bare yes/no that API Gateway reuses for every
 * request with the same identity-source values, on every route of the API (DESIGN §5).
 * So the key holds the credential, the HTTP method and the concrete path
 * (`$context.httpMethod`, `$context.path`: context variables, which HTTP API Lambda
 * authorizers accept as identity sources), never only `$context.routeKey`: that is the
 * route template, the same for `/orgs/acme/…` and `/orgs/globex/…`. What the key still
 * leaves out (query, other headers, source IP, time) no admin route policy reads
 * (test/deploy/admin-authorizer-cache.test.ts); customer routes that read it are flagged
 * `condition-not-cacheable`. 60 s is safe because every admin function re-resolves its
 * caller against the table on each call: a revoked token or a demoted user is refused by
 * the function at once; the TTL only spares invocations.
 */
export const ADMIN_AUTHORIZER = {
  identitySources: ['$request.header.Authorization', '$context.httpMethod', '$context.path'],
  ttl: '60 seconds',
} as const;

/**
 * How SST bundles every function (`nodejs` of `sst.aws.Function`): minified ESM, split.
 * Splitting puts each module that is imported dynamically in a file of its own, loaded
 * only when that import runs: jexl (core/policy/expression.ts) and the AWS SDK's
 * credential providers and clients that a Lambda function, whose credentials are in its
 * environment, never calls. README, Benchmarks: the cold import this saves.
 */
export const NODEJS_BUILD = { format: 'esm', minify: true, splitting: true } as const;

/**
 * The esbuild options SST's Node.js builder uses for {@link NODEJS_BUILD} on the
 * `nodejs22.x` runtime, so the tests and the bench build what deploys: target ES2023,
 * `module` before `main`, names kept (SST's default: error classes name themselves from
 * `new.target.name`), its banner (a `require` for CommonJS dependencies), linked source
 * maps, and the entry written as `bundle.mjs` beside its chunks in `outdir`.
 */
export function lambdaEsbuildOptions(entry: string, outdir: string) {
  return {
    entryPoints: [entry],
    outdir,
    entryNames: 'bundle',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    platform: 'node' as const,
    format: 'esm' as const,
    target: 'es2023',
    mainFields: ['module', 'main'],
    keepNames: true,
    minify: true,
    sourcemap: 'linked' as const,
    banner: {
      js: [
        "import { createRequire as topLevelCreateRequire } from 'module';",
        'const require = topLevelCreateRequire(import.meta.url);',
        'import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"',
        'const __filename = topLevelFileUrlToPath(import.meta.url)',
        'const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))',
        '',
      ].join('\n'),
    },
    logLevel: 'error' as const,
  };
}

/**
 * The files a cold import of a bundle built with {@link lambdaEsbuildOptions} reads:
 * `bundle.mjs` and the chunks it imports statically, transitively (from the outputs of
 * esbuild's metafile). What is imported dynamically is read only when that import runs.
 */
export function loadedAtImport(outputs: Record<string, { imports: { path: string; kind: string; external?: boolean }[] }>): string[] {
  const entry = Object.keys(outputs).find((f) => f.endsWith('/bundle.mjs'));
  if (entry === undefined) throw new Error('no bundle.mjs among the outputs');
  const seen = new Set<string>();
  const visit = (f: string) => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const i of outputs[f]!.imports) if (i.kind === 'import-statement' && !i.external) visit(i.path);
  };
  visit(entry);
  return [...seen];
}

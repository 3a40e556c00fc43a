/**
 * `npm run bench`: every number is measured in this one run, beside the libraries
 * people would otherwise use, and printed as a ratio. Nothing here is asserted by tests.
 */
import { BatchWriteItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { JwtRsaVerifier } from 'aws-jwt-verify';
import { build, type Metafile } from 'esbuild';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { spawnSync } from 'node:child_process';
import { createSign, KeyObject, verify as cryptoVerify } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compilePolicy } from '../core/authorizer/policy';
import { compileStatements } from '../core/gateway/compile';
import { createRestAuthorizer } from '../core/gateway/handlers';
import { MAX_POLICY_BYTES, type IamAuthorizerResponse } from '../core/gateway/iam';
import { generateToken, hashSecret } from '../core/identity/token-format';
import type { RouteRule } from '../core/policy/routes';
import type { Role } from '../core/rbac/types';
import { membershipItem } from '../core/store/dynamo/users';
import { tokenItem } from '../core/store/dynamo/tokens';
import { ensureTable } from '../core/store/dynamo/table';
import type { createAuthorizerRuntime } from '../functions/authorizer/runtime';
import { createRuntime } from '../functions/runtime';
import { lambdaEsbuildOptions, loadedAtImport } from '../infra/handlers';
import { startDynamoLocal } from '../local/dynamodb-local';
import { countRequests } from '../test/support/count';
import { makeIssuer } from '../test/support/jwt';

const ROOT = resolve(import.meta.dirname, '..');
const API = 'arn:aws:execute-api:us-east-1:123456789012:bench/prod';

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
/** The value a fraction `q` of the way through the sorted values (0.5: the median). */
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;
const median = (xs: number[]) => quantile(xs, 0.5);

/** Operations per second of `fn` over about `ms` milliseconds (after a warm-up). */
async function rate(fn: (i: number) => unknown, ms = 1500): Promise<number> {
  for (let i = 0; i < 300; i++) await fn(i);
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let k = 0; k < 50; k++) await fn(n++);
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

/** Microseconds per call of `fn` over `n` calls. */
async function perCall(fn: () => unknown, n: number): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return ((performance.now() - t) * 1000) / n;
}

/**
 * Sides measured in many short rounds, each side `n` calls per round, the order rotating
 * every round: this machine speeds up and slows down by a third within seconds, and a
 * round's sides share its phase. Returns each side's median calls per second and the
 * median of every round's ratio of side 0 to each side.
 */
async function rounds(sides: (() => unknown)[], n: number, count: number) {
  const per: number[][] = sides.map(() => []);
  for (let r = 0; r < count; r++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (r + k) % sides.length;
      per[i]!.push(await perCall(sides[i]!, n));
    }
  }
  return {
    perSecond: per.map((us) => 1e6 / median(us)),
    ratio: per.map((us) => median(us.map((u, r) => u / per[0]![r]!))),
  };
}

function routes(count: number): RouteRule[] {
  const base: RouteRule[] = [
    { route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}' },
    { route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'read', org: '{orgId}' },
    { route: 'DELETE /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'delete', org: '{orgId}' },
    { route: 'GET /health', resource: 'health', action: 'read', public: true },
  ];
  for (let i = base.length; i < count; i++) base.push({ route: `GET /svc${i}/{orgId}/items/{itemId}`, resource: `item${i % 50}`, action: 'read', org: '{orgId}' });
  return base;
}

function roles(count: number): Role[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `custom-${i}`,
    site: [],
    org: [{ resource: `item${i % 50}`, action: 'read' }, { resource: 'project', action: i % 7 === 0 ? 'delete' : 'read' }],
    member: [],
    user: [],
    ...(i % 2 === 0 ? { orgId: 'acme' } : {}),
  }));
}

/** Writes items 25 at a time. */
async function batchPut(client: DynamoDBClient, table: string, items: Record<string, unknown>[]) {
  for (let i = 0; i < items.length; i += 25) {
    let request = items.slice(i, i + 25).map((item) => ({ PutRequest: { Item: marshall(item, { removeUndefinedValues: true }) } }));
    while (request.length > 0) {
      const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: request } }));
      request = (out.UnprocessedItems?.[table] ?? []) as typeof request;
    }
  }
}

async function world(endpoint: string, table: string, routeCount: number, roleCount: number) {
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  await ensureTable(client, table);
  const idp = await makeIssuer();
  const now = Math.floor(Date.now() / 1000);
  const env = { GATEHOUSE_TABLE: table, GATEHOUSE_ISSUERS: JSON.stringify([idp.config]), GATEHOUSE_LOG_LEVEL: 'error' };
  /** A container on this table (its own, empty caches). */
  const fresh = () => {
    const rt = createRuntime(env, { client, logSink: () => {} });
    return { rt, rest: createRestAuthorizer(rt.gateway) };
  };
  const { rt, rest } = fresh();
  await rt.store.policy.putRoutes(routes(routeCount), now);
  for (const id of ['acme', 'globex']) await rt.store.orgs.createOrg({ id, name: id, createdAt: now });
  for (const role of roles(roleCount)) await rt.store.policy.putRole(role, now);
  await rt.store.users.putMembership('acme', 'alice', ['org-viewer', ...roles(roleCount).filter((r) => r.orgId === 'acme').slice(0, 5).map((r) => r.name)], now);
  await rt.store.users.putMembership('globex', 'alice', ['org-member'], now);
  // RS256 tokens signed with node:crypto: thousands are needed, jose's async signer is slow.
  const pem = KeyObject.from(idp.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string;
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = b64({ alg: 'RS256', kid: 'k1', typ: 'JWT' });
  const sign = (sub: string, jti: string) => {
    const body = `${head}.${b64({ iss: idp.issuer, aud: 'api', sub, iat: now, exp: now + 3600, jti })}`;
    return `${body}.${createSign('sha256').update(body).sign(pem).toString('base64url')}`;
  };
  return { rt, idp, rest, client, now, fresh, env, pem, sign };
}

/**
 * Shadow mode (docs/policies.md, "Shadow mode"): the cost per decision of deciding with a set's
 * candidate too, against the same set without one (two containers, same run), and the
 * DynamoDB writes one container makes under load while a candidate differs everywhere.
 */
async function shadowSection(endpoint: string, line: (s: string) => void) {
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  const table = 'bench_shadow';
  await ensureTable(client, table);
  const idp = await makeIssuer();
  let clockMs = Date.now();
  const now = () => clockMs;
  const nowS = () => Math.floor(clockMs / 1000);
  const container = (set: string) => {
    const rt = createRuntime({ GATEHOUSE_TABLE: table, GATEHOUSE_ISSUERS: JSON.stringify([idp.config]), GATEHOUSE_LOG_LEVEL: 'error', GATEHOUSE_POLICY_SET: set }, { client, logSink: () => {}, now });
    return { rt, rest: createRestAuthorizer(rt.gateway) };
  };
  const setup = container('plain').rt.store;
  const table10 = routes(10);
  const projectRead = (r: RouteRule) => r.route === 'GET /orgs/{orgId}/projects/{projectId}';
  // Two candidates of the same table, each changing the rule every measured request hits:
  // project reads need another permission (every decision differs), or a jexl condition.
  const otherPermission = table10.map((r) => (projectRead(r) ? { ...r, action: 'delete' } : r));
  const withCondition = table10.map((r) => (projectRead(r) ? { ...r, condition: 'principal.emailVerified == true' } : r));
  for (const set of ['plain', 'shadowed', 'conditioned']) await setup.policy.writeSet(await setup.policy.readSet(set), { routes: table10 }, nowS(), 'bench');
  await setup.policy.putCandidate(await setup.policy.readCandidate('shadowed'), { routes: otherPermission, tests: [] }, nowS(), 'bench');
  await setup.policy.putCandidate(await setup.policy.readCandidate('conditioned'), { routes: withCondition, tests: [] }, nowS(), 'bench');
  // For scale: such a condition in a live set, with no candidate (one that holds, so the
  // answer is still an Allow: a Deny answer is cheaper to build, which would hide its cost).
  const holding = table10.map((r) => (projectRead(r) ? { ...r, condition: 'principal.emailVerified != true' } : r));
  await setup.policy.writeSet(await setup.policy.readSet('live-condition'), { routes: holding }, nowS(), 'bench');
  await setup.orgs.createOrg({ id: 'acme', name: 'acme', createdAt: nowS() });
  await setup.users.putMembership('acme', 'alice', ['org-viewer'], nowS());
  const jwt = await idp.sign('alice', nowS());
  const event = (path: string) => ({ type: 'TOKEN' as const, authorizationToken: `Bearer ${jwt}`, methodArn: `${API}/GET${path}` });
  const containers = ['plain', 'shadowed', 'conditioned', 'live-condition'].map(container);
  let i = 0;
  // A new path every request, so every one is decided: a repeat may be answered from memory
  // (README, In-Lambda caches), which a set with a candidate never is.
  const sides = containers.map((c) => () => c.rest(event(`/orgs/acme/projects/p${i++}`)));
  for (const side of sides) for (let k = 0; k < 500; k++) await side();
  const measured = await rounds(sides, 200, 31);

  // Under load: 200 public routes live, none in the candidate (every request differs, in
  // 200 kinds), a new path and one of 1,000 callers every request; 15 simulated seconds per
  // 2,000 decisions, 5 minutes.
  const flood = routes(4).concat(Array.from({ length: 200 }, (_, k) => ({ route: `GET /svc${k}/{proxy+}`, resource: 'svc', action: 'read', public: true })));
  await setup.policy.writeSet(await setup.policy.readSet('flooded'), { routes: flood }, nowS(), 'bench');
  await setup.policy.putCandidate(await setup.policy.readCandidate('flooded'), { routes: routes(4), tests: [] }, nowS(), 'bench');
  const loaded = container('flooded');
  const counter = countRequests(client);
  const perMinute: number[] = [];
  let decisions = 0;
  for (let minute = 0; minute < 5; minute++) {
    counter.reset();
    for (let quarter = 0; quarter < 4; quarter++) {
      for (let k = 0; k < 2000; k++, decisions++) {
        await loaded.rest({ type: 'REQUEST', methodArn: `${API}/GET/svc${decisions % 200}/u${decisions % 1000}/p${decisions}`, headers: {} } as never).catch(() => {});
      }
      clockMs += 15_000;
    }
    perMinute.push(counter.commands().filter((c) => c === 'UpdateItemCommand').length);
  }
  counter.stop();
  line('');
  line('## Shadow mode (REST TOKEN handler, warm caches; a 10-route set, its candidate changing the rule every request hits)');
  line('| measure | decisions/s | time per decision | target |');
  line('|---|---|---|---|');
  line(`| no candidate | ${fmt(measured.perSecond[0]!)} | 1x | - |`);
  line(`| candidate needing another permission (every decision differs) | ${fmt(measured.perSecond[1]!)} | ${fmt(measured.ratio[1]!, 2)}x | <= 1.3x |`);
  line(`| candidate adding a jexl condition | ${fmt(measured.perSecond[2]!)} | ${fmt(measured.ratio[2]!, 2)}x | - (the condition's own cost, next row) |`);
  line(`| no candidate, the live set holding that condition | ${fmt(measured.perSecond[3]!)} | ${fmt(measured.ratio[3]!, 2)}x | - |`);
  line(`| DynamoDB writes per minute, one container, 8,000 decisions/min differing in 200 kinds | ${perMinute.join(', ')} (max ${Math.max(...perMinute)}) | <= 52 (bounded) |`);
}

/**
 * The REST TOKEN handler of a new container on `w`'s table, built as Lambda runs it: the
 * authorizer runtime and handler bundled by esbuild as SST bundles them (not the
 * TypeScript this bench runs under tsx, which wraps every function it creates in a
 * `__name` call that the deployed bundle does not make). Without the Lambda wrapper:
 * bench/ops.ts measures what that adds.
 */
async function bundledRest(w: World): Promise<(event: unknown) => Promise<IamAuthorizerResponse>> {
  const dir = join(ROOT, 'dist', 'bench', 'decisions');
  mkdirSync(dir, { recursive: true });
  const entry = join(dir, 'entry.ts');
  writeFileSync(entry, `export { createAuthorizerRuntime } from ${JSON.stringify(join(ROOT, 'functions/authorizer/runtime'))};\nexport { createRestAuthorizer } from ${JSON.stringify(join(ROOT, 'core/gateway/handlers'))};\n`);
  await build({ ...lambdaEsbuildOptions(entry, dir), nodePaths: [join(ROOT, 'node_modules')] });
  const bundle = (await import(pathToFileURL(join(dir, 'bundle.mjs')).href)) as { createAuthorizerRuntime: typeof createAuthorizerRuntime; createRestAuthorizer: typeof createRestAuthorizer };
  const rt = bundle.createAuthorizerRuntime(w.env, { client: w.client, logSink: () => {} });
  return bundle.createRestAuthorizer(rt.gateway) as (event: unknown) => Promise<IamAuthorizerResponse>;
}

/** A bundle as SST deploys it: its entry, and what its outputs hold. */
interface Built {
  entry: string;
  outputs: Metafile['outputs'];
}

/** Builds the REST authorizer and the bare comparison (a DynamoDB client and jose), each as SST builds a function (infra/handlers.ts), into `dist/bench/{rest,bare}`. */
async function buildBundles(): Promise<{ rest: Built; bare: Built }> {
  const bareEntry = join(mkdtempSync(join(tmpdir(), 'gatehouse-bench-')), 'bare.ts');
  writeFileSync(bareEntry, `import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';\nimport { createLocalJWKSet, jwtVerify } from 'jose';\nconst client = new DynamoDBClient({});\nexport const handler = async (e: { t: string }) => [client, GetItemCommand, jwtVerify, createLocalJWKSet, e];\n`);
  const one = async (name: string, entry: string): Promise<Built> => {
    const dir = join(ROOT, 'dist', 'bench', name);
    rmSync(dir, { recursive: true, force: true });
    const { metafile } = await build({ ...lambdaEsbuildOptions(entry, dir), metafile: true, nodePaths: [join(ROOT, 'node_modules')] });
    return { entry: join(dir, 'bundle.mjs'), outputs: metafile!.outputs };
  };
  return { rest: await one('rest', join(ROOT, 'functions/authorizer/rest.ts')), bare: await one('bare', bareEntry) };
}

const kib = (b: Built, files: string[]) => files.reduce((sum, f) => sum + b.outputs[f]!.bytes, 0) / 1024;
const jsFiles = (b: Built) => Object.keys(b.outputs).filter((f) => f.endsWith('.mjs'));

/** Bundle sizes and cold imports, each bundle's entry imported in 31 rounds of fresh processes; and what loading jexl adds, once. */
function bundleSection(bundles: { rest: Built; bare: Built }, line: (s: string) => void) {
  const cwd = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
  const child = (code: string) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd, env: { PATH: process.env.PATH ?? '', GATEHOUSE_TABLE: 'bench', AWS_REGION: 'us-east-1' }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cold import failed: ${r.stderr}`);
    return Number(r.stdout.trim());
  };
  const importMs = (b: Built) => child(`const t=performance.now(); await import(${JSON.stringify(pathToFileURL(b.entry).href)}); console.log(performance.now()-t);`);
  const jexlChunk = jsFiles(bundles.rest).find((f) => Object.keys(bundles.rest.outputs[f]!.inputs).some((i) => i.includes('node_modules/jexl/')))!;
  // After the cold import, what the first policy holding an expression adds: importing jexl's chunk.
  const jexlMs = () => child(`await import(${JSON.stringify(pathToFileURL(bundles.rest.entry).href)}); const t=performance.now(); await import(${JSON.stringify(pathToFileURL(resolve(ROOT, jexlChunk)).href)}); console.log(performance.now()-t);`);
  // Rounds of one import each, the order alternating; the ratio is the median of the rounds' ratios, as
  // for decisions (rounds()): a burst of load on this VM slows both sides of a round, not one side's median.
  const oursImport: number[] = [];
  const bareImport: number[] = [];
  const jexlImport: number[] = [];
  for (let i = 0; i < 31; i++) {
    if (i % 2 === 0) {
      oursImport.push(importMs(bundles.rest));
      bareImport.push(importMs(bundles.bare));
    } else {
      bareImport.push(importMs(bundles.bare));
      oursImport.push(importMs(bundles.rest));
    }
    if (i < 7) jexlImport.push(jexlMs());
  }
  const ratio = median(oursImport.map((ms, i) => ms / bareImport[i]!));
  const sizes = (b: Built) => `${fmt(kib(b, loadedAtImport(b.outputs)))} KiB in ${loadedAtImport(b.outputs).length} files (${fmt(kib(b, jsFiles(b)))} KiB in ${jsFiles(b).length} with what loads on demand)`;
  line('');
  line('## Bundle (as SST builds a function: minified, split ESM, names kept) and cold import (31 rounds of one fresh process each, the order alternating; medians)');
  line('| bundle | read at import | cold import |');
  line('|---|---|---|');
  line(`| authorizer (functions/authorizer/rest.ts) | ${sizes(bundles.rest)} | ${fmt(median(oursImport), 1)} ms |`);
  line(`| bare (@aws-sdk/client-dynamodb + jose) | ${sizes(bundles.bare)} | ${fmt(median(bareImport), 1)} ms |`);
  line(`| ratio | ${fmt(kib(bundles.rest, loadedAtImport(bundles.rest.outputs)) / kib(bundles.bare, loadedAtImport(bundles.bare.outputs)), 2)}x | ${fmt(ratio, 2)}x, the median of the rounds' ratios (target <= 1.15x) |`);
  line(`| jexl, loaded with the first policy that holds an expression (median of 7) | ${fmt(bundles.rest.outputs[jexlChunk]!.bytes / 1024)} KiB | +${fmt(median(jexlImport), 1)} ms on that request |`);
}

/** The bundled REST authorizer (from {@link bundleSection}) deciding for many callers in its own small process. */
/**
 * The V8 heap of a small Lambda. Lambda's Node.js runtime starts node with limits derived
 * from the function's memory (its `bootstrap`: a tenth of it for the young generation, in
 * two semi-spaces, the rest for the old one): a 128 MB function gets
 * `--max-semi-space-size=6`. The old space is held to 64 MiB, tighter than the 115 such a
 * function gets. Without the semi-space bound, node's default lets the young generation
 * grow to 2 x 16 MiB, which no 128 MB function has.
 */
const SMALL_LAMBDA_HEAP = ['--max-old-space-size=64', '--max-semi-space-size=6'];

async function memorySection(endpoint: string, worlds: [World, World], bundles: { rest: Built }, line: (s: string) => void) {
  const [small, big] = worlds;
  line('');
  line(`## Memory (bundled REST authorizer in its own process, ${SMALL_LAMBDA_HEAP.join(' ')} as a 128 MB Lambda's young generation; heap after a forced GC)`);
  line('| table | after 10k JWT users | 20k | 30k | + 10k gatehouse tokens | RSS at the end | target |');
  line('|---|---|---|---|---|---|---|');
  for (const w of [small, big]) {
    const table = w === small ? 'bench_small' : 'bench_big';
    const users = 30_000;
    // Users are members of one of 100 orgs; 10,000 of them also hold a personal token.
    await batchPut(w.client, table, Array.from({ length: users }, (_, k) => membershipItem(`org${(k + 1) % 100}`, `user${k + 1}`, ['org-viewer'], w.now)));
    const creds: string[] = [];
    const items: Record<string, unknown>[] = [];
    for (let k = 1; k <= 10_000; k++) {
      const g = generateToken();
      creds.push(g.token);
      items.push(tokenItem({ id: g.id, kind: 'personal', name: 'mem', ownerId: `user${k}`, secretHash: hashSecret(g.secret), createdAt: w.now, expiresAt: w.now + 86400, lastUsedAt: w.now }));
    }
    await batchPut(w.client, table, items);
    const files = mkdtempSync(join(tmpdir(), 'gatehouse-mem-'));
    writeFileSync(join(files, 'key.pem'), w.pem);
    writeFileSync(join(files, 'tokens.txt'), creds.join('\n'));
    const r = spawnSync(process.execPath, [...SMALL_LAMBDA_HEAP, '--expose-gc', join(ROOT, 'bench/memory-child.mjs')], {
      env: {
        PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_ENDPOINT_URL_DYNAMODB: endpoint,
        ...w.env, BUNDLE: bundles.rest.entry, KEY_PEM: join(files, 'key.pem'), KID: 'k1', ISSUER: w.idp.issuer, USERS: String(users),
        TOKENS_FILE: join(files, 'tokens.txt'), STEP: '10000', ARN_PREFIX: API,
      },
      encoding: 'utf8',
      // The bundle also writes its EMF metric blocks (one per invocation) to stdout.
      maxBuffer: 1024 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`memory child failed (status ${r.status}, signal ${r.signal}, ${r.error?.message ?? 'no spawn error'}): ${r.stderr.replace(/\(node:\d+\) Warning: NodeVersionSupportWarning[\s\S]*?to show where the warning was created\)\n?/, '').slice(-3000)}`);
    const points = r.stdout.split('\n').filter((l) => l.startsWith('{"users":')).map((l) => JSON.parse(l) as { users: number; tokens: number; heapMiB: number; rssMiB: number });
    const at = (u: number, tk: number) => points.find((p) => p.users === u && p.tokens === tk)!;
    const last = points.at(-1)!;
    line(`| ${w === small ? '10 routes / 10 roles' : '1,000 routes / 100 roles'} | ${fmt(at(10_000, 0).heapMiB, 1)} MiB | ${fmt(at(20_000, 0).heapMiB, 1)} MiB | ${fmt(at(30_000, 0).heapMiB, 1)} MiB | ${fmt(last.heapMiB, 1)} MiB | ${fmt(last.rssMiB)} MiB | heap <= 48 MiB, RSS <= 128 MiB, flat from 10k |`);
  }
}

type World = Awaited<ReturnType<typeof world>>;

/** Decisions per second: repeated, first-seen and gatehouse-token decisions (the bundled handler) against aws-jwt-verify, jose and node:crypto. */
async function decisionsSection(small: World, line: (s: string) => void) {
  const rest = await bundledRest(small);
  const event = (credential: string, path = '/orgs/acme/projects/p1') => ({ type: 'TOKEN' as const, authorizationToken: `Bearer ${credential}`, methodArn: `${API}/GET${path}` });
  const jwt = small.sign('alice', 'repeated');
  const firstSeen = Array.from({ length: 16_000 }, (_, i) => small.sign('alice', `j${i}`));
  const t = generateToken();
  await small.rt.store.tokens.createToken({ id: t.id, kind: 'personal', name: 'bench', ownerId: 'alice', secretHash: hashSecret(t.secret), createdAt: small.now, expiresAt: small.now + 86400, lastUsedAt: small.now });
  const check = await rest(event(jwt));
  if (check.policyDocument.Statement[0]?.Effect !== 'Allow') throw new Error('bench world is not allowing: ' + JSON.stringify(check));

  const jwks = createLocalJWKSet(small.idp.jwks);
  const aws = JwtRsaVerifier.create({ issuer: small.idp.issuer, audience: 'api', jwksUri: 'https://idp.test/.well-known/jwks.json' });
  aws.cacheJwks(small.idp.jwks as never);
  const publicKey = KeyObject.from(await (await import('jose')).importJWK(small.idp.jwks.keys[0]!, 'RS256') as never);
  const raw = (token: string) => {
    const dot = token.lastIndexOf('.');
    return cryptoVerify('sha256', Buffer.from(token.slice(0, dot)), publicKey, Buffer.from(token.slice(dot + 1), 'base64url'));
  };

  const repeated = await rate(() => rest(event(jwt)));
  const awsRate = await rate(() => aws.verifySync(jwt));
  const gat = await rate(() => rest(event(t.token)));
  // First-seen tokens: every side gets tokens it has not seen (aws-jwt-verify and
  // node:crypto keep none; jose's own key cache is warm, as ours is).
  let next = 0;
  const token = () => firstSeen[next++ % firstSeen.length]!;
  const ours = () => rest(event(token()));
  const sides = [ours, () => aws.verifySync(token()), () => jwtVerify(token(), jwks, { issuer: small.idp.issuer, audience: 'api' }), () => raw(token())];
  for (const side of sides) for (let i = 0; i < 300; i++) await side();
  const first = await rounds(sides, 100, 31);
  if (next > firstSeen.length) throw new Error('bench: first-seen tokens ran out (a token would be measured twice)');

  line('## Decisions per second (REST TOKEN handler as bundled for Lambda, warm caches)');
  line('| measure | per second | ratio | target |');
  line('|---|---|---|---|');
  line(`| repeated JWT decision | ${fmt(repeated)} | ${fmt(repeated / awsRate, 2)}x aws-jwt-verify verifySync (${fmt(awsRate)}/s) | >= 10x |`);
  line(`| first-seen JWT decision (known user) | ${fmt(first.perSecond[0]!)} | ${fmt(first.ratio[1]!, 2)}x verifySync (${fmt(first.perSecond[1]!)}/s); ${fmt(first.ratio[2]!, 2)}x jose.jwtVerify (${fmt(first.perSecond[2]!)}/s) | >= 0.7x verifySync, >= 2.5x jose |`);
  line(`| the limit: node:crypto.verify alone | ${fmt(first.perSecond[3]!)} | ${fmt(first.ratio[3]!, 2)}x (our decision's share of it) | - |`);
  line(`| gatehouse token decision (warm) | ${fmt(gat)} | ${fmt(gat / awsRate, 2)}x verifySync | >= 3x |`);

  return { jwt, t, token, rest };
}

async function main() {
  const dynamo = await startDynamoLocal();
  const line = (s: string) => console.log(s);
  try {
    const small = await world(dynamo.endpoint, 'bench_small', 10, 10);
    const event = (credential: string, path = '/orgs/acme/projects/p1') => ({ type: 'TOKEN' as const, authorizationToken: `Bearer ${credential}`, methodArn: `${API}/GET${path}` });

    const { jwt, t, token, rest } = await decisionsSection(small, line);

    // --- DynamoDB requests per decision ------------------------------------------
    const counter = countRequests(small.client);
    await small.rt.store.users.putMembership('acme', 'bob-cold', ['org-viewer'], small.now);
    counter.reset();
    await rest(event(small.sign('bob-cold', 'c1')));
    const coldJwt = counter.total();
    const t2 = generateToken();
    await small.rt.store.tokens.createToken({ id: t2.id, kind: 'personal', name: 'cold', ownerId: 'carol-cold', secretHash: hashSecret(t2.secret), createdAt: small.now, expiresAt: small.now + 86400 });
    counter.reset();
    await rest(event(t2.token));
    const coldTokenReads = counter.reads();
    const coldTokenWrites = counter.total() - coldTokenReads;
    counter.reset();
    for (let i = 0; i < 100; i++) await rest(event(jwt));
    for (let i = 0; i < 100; i++) await rest(event(t.token));
    const warm = counter.total() / 200;
    counter.reset();
    const forged = small.sign('alice', 'x').slice(0, -4) + 'AAAA';
    const cold = small.fresh();
    await cold.rest(event(forged)).catch(() => {});
    const forgedCold = counter.total();
    counter.stop();
    line('');
    line('## DynamoDB requests per decision');
    line('| case | requests | target |');
    line('|---|---|---|');
    line(`| cold JWT principal | ${coldJwt} | 1 |`);
    line(`| cold gatehouse token | ${coldTokenReads} reads (+${coldTokenWrites} telemetry writes: access log once/route/minute, lastUsedAt once/hour) | 2 |`);
    line(`| warm (JWT and token) | ${fmt(warm, 2)} | 0 |`);
    line(`| forged JWT, fresh container | ${forgedCold} | 0 |`);

    // --- latency ------------------------------------------------------------------
    const lat = async (fn: (i: number) => Promise<unknown>, n: number) => {
      const us: number[] = [];
      for (let i = 0; i < n; i++) {
        const s = performance.now();
        await fn(i);
        us.push((performance.now() - s) * 1000);
      }
      return `${fmt(quantile(us, 0.5))} us | ${fmt(quantile(us, 0.99))} us`;
    };
    await batchPut(small.client, 'bench_small', Array.from({ length: 400 }, (_, i) => membershipItem('acme', `lat${i}`, ['org-viewer'], small.now)));
    const newUsers = Array.from({ length: 400 }, (_, i) => small.sign(`lat${i}`, 'l'));
    const latRows = [
      ['new user (roles read from DynamoDB Local)', await lat((i) => rest(event(newUsers[i]!)), 400)],
      ['new JWT of a known user', await lat(() => rest(event(token())), 2000)],
      ['repeated JWT', await lat(() => rest(event(jwt)), 5000)],
      ['gatehouse token (warm)', await lat(() => rest(event(t.token)), 5000)],
    ];
    line('');
    line('## Latency per decision (sequential, REST TOKEN handler as bundled for Lambda, DynamoDB Local on loopback)');
    line('| case | p50 | p99 |');
    line('|---|---|---|');
    for (const [name, v] of latRows) line(`| ${name} | ${v} |`);

    // --- bundle size and cold import ----------------------------------------------
    const bundles = await buildBundles();
    bundleSection(bundles, line);

    // --- scale: 10 routes/roles vs 1,000 routes / 100 roles --------------------------
    const big = await world(dynamo.endpoint, 'bench_big', 1000, 100);
    const jwtSmall = small.sign('alice', 'scale');
    const jwtBig = big.sign('alice', 'scale');
    // A new project id every time: every call matches, decides and answers.
    const smallRate = await rate((i) => small.rest(event(jwtSmall, `/orgs/acme/projects/s${i}`)));
    const bigRate = await rate((i) => big.rest(event(jwtBig, `/orgs/acme/projects/b${i}`)));
    line('');
    line('## Policy scale (warm caches, same principal, a new path every call)');
    line('| table | decisions/s |');
    line('|---|---|');
    line(`| 10 routes, 10 custom roles | ${fmt(smallRate)} |`);
    line(`| 1,000 routes, 100 custom roles | ${fmt(bigRate)} |`);
    line(`| slowdown | ${fmt(smallRate / bigRate, 2)}x (target <= 2x) |`);

    await shadowSection(dynamo.endpoint, line);

    // --- IAM answer compile: one principal's statements on the 1,000-route table -------
    line('');
    line('## IAM answer compile (1,000-route table; a principal in 1, 10 and 100 orgs; median of 15 compiles, route index warm)');
    line('| principal | orgs | compile | Allow / Deny patterns | answer size |');
    line('|---|---|---|---|---|');
    {
      const policy = compilePolicy({ version: '1', routes: routes(1000), roles: [{ name: 'item0-reader', site: [], org: [{ resource: 'item0', action: 'read' }], member: [], user: [] }] });
      const first = performance.now();
      compileStatements(policy, { id: 'warm', kind: 'user', siteRoles: [], orgs: { o0: ['org-viewer'] } }, Date.now(), { maxBytes: MAX_POLICY_BYTES - 512 });
      line(`| (first compile of the table: route index) | 1 | ${fmt(performance.now() - first, 1)} ms | | |`);
      for (const [label, role] of [['narrow (item0:read: 20 routes per org)', 'item0-reader'], ['org viewer (every route)', 'org-viewer']] as const) {
        for (const n of [1, 10, 100]) {
          const principal = { id: `p${n}`, kind: 'user' as const, siteRoles: [], orgs: Object.fromEntries(Array.from({ length: n }, (_, k) => [`o${k}`, [role]])) };
          const times: number[] = [];
          let out: ReturnType<typeof compileStatements> = 'cut';
          for (let k = 0; k < 15; k++) {
            const t = performance.now();
            out = compileStatements(policy, principal, Date.now(), { maxBytes: MAX_POLICY_BYTES - 512 });
            times.push(performance.now() - t);
          }
          const size = out === 'cut' ? `over ${fmt(MAX_POLICY_BYTES / 1024, 0)} KiB: cut to the live route` : `${fmt(out.bytes)} B (+ ARN prefix per pattern)`;
          line(`| ${label} | ${n} | ${fmt(median(times), 2)} ms | ${out === 'cut' ? '-' : `${out.allow.length} / ${out.deny.length}`} | ${size} |`);
        }
      }
    }

    // --- memory: the bundled authorizer in a small Lambda's heap ------------------------
    await memorySection(dynamo.endpoint, [small, big], bundles, line);
  } finally {
    await dynamo.stop();
  }
}

/** `npm run bench -- --only=shadow` (or `decisions`, `bundle`, `memory`): one section alone (while developing it). */
const only = process.argv.slice(2).find((a) => a.startsWith('--only='))?.slice('--only='.length);
const sections: Record<string, () => Promise<void>> = {
  decisions: async () => {
    const dynamo = await startDynamoLocal();
    try {
      await decisionsSection(await world(dynamo.endpoint, 'bench_small', 10, 10), (s) => console.log(s));
    } finally {
      await dynamo.stop();
    }
  },
  bundle: async () => bundleSection(await buildBundles(), (s) => console.log(s)),
  memory: async () => {
    const dynamo = await startDynamoLocal();
    try {
      const worlds: [World, World] = [await world(dynamo.endpoint, 'bench_small', 10, 10), await world(dynamo.endpoint, 'bench_big', 1000, 100)];
      await memorySection(dynamo.endpoint, worlds, await buildBundles(), (s) => console.log(s));
    } finally {
      await dynamo.stop();
    }
  },
  shadow: async () => {
    const dynamo = await startDynamoLocal();
    try {
      await shadowSection(dynamo.endpoint, (s) => console.log(s));
    } finally {
      await dynamo.stop();
    }
  },
};
if (only !== undefined && !sections[only]) throw new Error(`bench: no section ${only} (${Object.keys(sections).join(', ')})`);
(only !== undefined ? sections[only]!() : main()).catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

// --- operations: what logging and metrics cost (bench/ops.ts) -----------------
// Self-contained, and run once the sections above are done (the event loop is empty
// then), so neither is measured under the other's load.
let opsRan = false;
process.on('beforeExit', () => {
  if (opsRan || process.exitCode || only !== undefined) return;
  opsRan = true;
  void import('./ops')
    .then((m) => m.runOpsBench())
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
});

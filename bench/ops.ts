/**
 * What logging and metrics cost: our line writer against Powertools Logger (per line and
 * cold import), and what the Lambda wrapper (log keys, the decision line, the EMF line)
 * adds to a decision. Run by `npm run bench` after its other sections, or alone:
 * `npx tsx bench/ops.ts`. Every number is measured in this one run.
 */
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createLineWriter, createLogger, LogKeys } from '../core/log';
import { ensureTable } from '../core/store/dynamo/table';
import { buildHandlers } from '../functions/apps';
import { lambda, stdoutSink } from '../functions/lambda';
import { createRuntime } from '../functions/runtime';
import { startDynamoLocal } from '../local/dynamodb-local';
import { makeIssuer } from '../test/support/jwt';

const ROOT = resolve(import.meta.dirname, '..');
const API = 'arn:aws:execute-api:us-east-1:123456789012:bench/prod';

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A decision line's fields, as `authorizer.decision` writes them. */
const FIELDS = { flavour: 'rest-token', effect: 'allow', reason: 'org-allow', method: 'GET', path: '/orgs/acme/projects/p1', principalId: 'alice', route: 'GET /orgs/{orgId}/projects/{projectId}', policyVersion: '1733140000000-3f9a', apiId: 'bench' };
const CONTEXT = { awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678', functionName: 'gatehouse-bench-RestAuthorizer', functionVersion: '$LATEST', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:gatehouse-bench-RestAuthorizer', memoryLimitInMB: '512' };

/**
 * Runs `fn` with stdout's write replaced by a counter, so lines cost what building and
 * handing them to the stream costs, without filling the terminal (the write system call
 * that follows is the same for both writers). Returns the bytes that would have been written.
 */
async function quietly(fn: () => Promise<void> | void): Promise<number> {
  const original = process.stdout.write;
  let bytes = 0;
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = original;
  }
  return bytes;
}

/**
 * Nanoseconds per call of each side, measured in interleaved rounds (the order of the
 * sides rotating), so a machine that speeds up or slows down moves every side of a round
 * together. Returns each side's per-round samples.
 */
async function rounds(sides: Record<string, () => unknown>, calls: number, count: number): Promise<Record<string, number[]>> {
  const names = Object.keys(sides);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) for (let i = 0; i < calls; i++) await sides[n]!();
  for (let r = 0; r < count; r++) {
    const order = names.map((_, k) => names[(k + r) % names.length]!);
    for (const n of order) {
      const fn = sides[n]!;
      const t = performance.now();
      for (let i = 0; i < calls; i++) await fn();
      samples[n]!.push(((performance.now() - t) * 1e6) / calls);
    }
  }
  return samples;
}

/** The same for synchronous calls (no await between calls). */
function syncRounds(sides: Record<string, () => unknown>, calls: number, count: number): Record<string, number[]> {
  const names = Object.keys(sides);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) for (let i = 0; i < calls; i++) sides[n]!();
  for (let r = 0; r < count; r++) {
    const order = names.map((_, k) => names[(k + r) % names.length]!);
    for (const n of order) {
      const fn = sides[n]!;
      const t = performance.now();
      for (let i = 0; i < calls; i++) fn();
      samples[n]!.push(((performance.now() - t) * 1e6) / calls);
    }
  }
  return samples;
}

/** Median over rounds of `a`'s sample minus `b`'s sample of the same round. */
const pairedDiff = (a: number[], b: number[]) => median(a.map((x, i) => x - b[i]!));

/** Per log line: our writer against Powertools Logger, same fields, same keys, both to process.stdout. */
async function perLine() {
  const keys = new LogKeys({ cold_start: false, function_request_id: CONTEXT.awsRequestId, xray_trace_id: '1-5759e988-bd862e3fe1be46a994272793', correlation_id: 'c4a3-bench' });
  const ours = createLogger({ level: 'info', writer: createLineWriter({ sink: stdoutSink, keys: () => keys }) });
  process.env._X_AMZN_TRACE_ID = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
  const pt = new PowertoolsLogger({ serviceName: 'gatehouse', logLevel: 'INFO' });
  pt.addContext(CONTEXT as never);
  pt.appendKeys({ correlation_id: 'c4a3-bench' });
  const oursBytes = await quietly(() => ours.info('authorizer.decision', FIELDS));
  const powertoolsBytes = await quietly(() => pt.info('authorizer.decision', FIELDS));
  let samples: Record<string, number[]> = {};
  await quietly(() => {
    samples = syncRounds({ ours: () => ours.info('authorizer.decision', FIELDS), powertools: () => pt.info('authorizer.decision', FIELDS) }, 5_000, 31);
  });
  delete process.env._X_AMZN_TRACE_ID;
  const ratios = samples.ours!.map((o, i) => samples.powertools![i]! / o);
  return { ours: median(samples.ours!), powertools: median(samples.powertools!), ratio: median(ratios), oursBytes, powertoolsBytes };
}

/** Bundle size and cold import (fresh processes) of a module that builds a logger and writes one line. */
async function coldImport(): Promise<{ rows: { name: string; kib: number; ms: number }[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-ops-'));
  const entries = {
    ours: `import { createLogger, createLineWriter, LogKeys } from ${JSON.stringify(join(ROOT, 'core/log.ts'))};\nconst keys = new LogKeys({ function_request_id: 'r' });\nconst logger = createLogger({ writer: createLineWriter({ sink: (l) => process.stdout.write(l + '\\n'), keys: () => keys }) });\nlogger.info('cold', { a: 1 });\nexport const handler = () => logger;\n`,
    powertools: `import { Logger } from '@aws-lambda-powertools/logger';\nconst logger = new Logger({ serviceName: 'gatehouse' });\nlogger.appendKeys({ function_request_id: 'r' });\nlogger.info('cold', { a: 1 });\nexport const handler = () => logger;\n`,
  };
  const rows: { name: string; kib: number; ms: number }[] = [];
  const samples: Record<string, number[]> = { ours: [], powertools: [] };
  for (const [name, code] of Object.entries(entries)) {
    writeFileSync(join(dir, `${name}.ts`), code);
    await build({
      entryPoints: [join(dir, `${name}.ts`)], outfile: join(dir, `${name}.mjs`), bundle: true, platform: 'node', format: 'esm', target: 'node22', minify: true,
      mainFields: ['module', 'main'], nodePaths: [join(ROOT, 'node_modules')], logLevel: 'error',
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    });
  }
  const importMs = (name: string) => {
    const code = `const t=performance.now(); await import(${JSON.stringify(pathToFileURL(join(dir, `${name}.mjs`)).href)}); process.stderr.write(String(performance.now()-t));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: dir, env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`import of ${name} failed: ${r.stderr}`);
    return Number(r.stderr.trim());
  };
  for (let i = 0; i < 15; i++) for (const name of i % 2 === 0 ? ['ours', 'powertools'] : ['powertools', 'ours']) samples[name]!.push(importMs(name));
  for (const name of ['ours', 'powertools']) rows.push({ name, kib: statSync(join(dir, `${name}.mjs`)).size / 1024, ms: median(samples[name]!) });
  return { rows };
}

/**
 * Per decision, through the REST handler: a repeated request (answered from memory, the
 * common case) and a new path every call (decided and logged each time). Three sides per
 * case: the bare core handler with nothing written, the Lambda wrapper at log level error
 * (log keys, metrics, the one EMF line), and the wrapper at info (plus the decision line).
 */
async function perDecision(endpoint: string) {
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  const table = 'bench_ops';
  await ensureTable(client, table);
  const idp = await makeIssuer();
  const now = Math.floor(Date.now() / 1000);
  const make = (level: string) => {
    const rt = createRuntime({ GATEHOUSE_TABLE: table, GATEHOUSE_ISSUERS: JSON.stringify([idp.config]), GATEHOUSE_LOG_LEVEL: level, AWS_LAMBDA_FUNCTION_NAME: 'gatehouse-bench-RestAuthorizer' }, { client });
    const core = buildHandlers(rt).rest;
    return { rt, core, wrapped: lambda(rt, 'rest', core) };
  };
  const bare = make('error');
  const emf = make('error');
  const full = make('info');
  await bare.rt.store.policy.putRoutes([{ route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'read', org: '{orgId}' }], now);
  await bare.rt.store.users.putMembership('acme', 'alice', ['org-viewer'], now);
  const jwt = await idp.sign('alice', now);
  const event = (path: string) => ({ type: 'TOKEN' as const, authorizationToken: `Bearer ${jwt}`, methodArn: `${API}/GET${path}` });
  const ctx = { awsRequestId: CONTEXT.awsRequestId };
  const cases: Record<string, Record<string, number[]>> = {};
  let i = 0;
  await quietly(async () => {
    const same = event('/orgs/acme/projects/p1');
    cases.repeated = await rounds({ bare: () => bare.core(same), emf: () => emf.wrapped(same, ctx), full: () => full.wrapped(same, ctx) }, 500, 21);
    cases.fresh = await rounds(
      { bare: () => bare.core(event(`/orgs/acme/projects/p${i++}`)), emf: () => emf.wrapped(event(`/orgs/acme/projects/p${i++}`), ctx), full: () => full.wrapped(event(`/orgs/acme/projects/p${i++}`), ctx) },
      200,
      21,
    );
  });
  // What one decision writes, for the table.
  const written: string[] = [];
  const original = process.stdout.write;
  process.stdout.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stdout.write;
  try {
    await full.wrapped(event(`/orgs/acme/projects/p${i++}`), ctx);
  } finally {
    process.stdout.write = original;
  }
  const emfBytes = written.filter((l) => l.includes('"_aws"')).reduce((n, l) => n + Buffer.byteLength(l), 0);
  return { cases, lines: written.length, emfBytes };
}

/** Prints the section; `line` is the caller's printer. */
export async function runOpsBench(line: (s: string) => void = (s) => console.log(s)): Promise<void> {
  const lineCost = await perLine();
  const cold = await coldImport();
  const dynamo = await startDynamoLocal();
  let decision: Awaited<ReturnType<typeof perDecision>>;
  try {
    decision = await perDecision(dynamo.endpoint);
  } finally {
    await dynamo.stop();
  }
  const [ours, pt] = cold.rows;
  const us = (ns: number) => `${fmt(ns / 1000, 2)} us`;
  line('');
  line('## Logging and metrics (operations)');
  line('| measure | ours (core/log.ts) | Powertools Logger 2.36 | ratio |');
  line('|---|---|---|---|');
  line(`| one decision line, built and handed to stdout | ${fmt(lineCost.ours)} ns (${lineCost.oursBytes} B) | ${fmt(lineCost.powertools)} ns (${lineCost.powertoolsBytes} B) | ${fmt(lineCost.ratio, 2)}x |`);
  line(`| bundle (esbuild, minified ESM) | ${fmt(ours!.kib, 1)} KiB | ${fmt(pt!.kib, 1)} KiB | ${fmt(pt!.kib / ours!.kib, 1)}x |`);
  line(`| cold import + first line (median of 15 fresh processes) | ${fmt(ours!.ms, 2)} ms | ${fmt(pt!.ms, 2)} ms | ${fmt(pt!.ms / ours!.ms, 2)}x |`);
  line('');
  line(`### What the Lambda wrapper adds per decision (REST handler; medians of ${decision.cases.repeated!.bare!.length} interleaved rounds)`);
  line(`| case | core handler alone | + log keys and metrics, one EMF line (${decision.emfBytes} B) | + the decision line (${decision.lines} lines in all) |`);
  line('|---|---|---|---|');
  for (const [name, label] of [['repeated', 'repeated request (answered from memory)'], ['fresh', 'new path every call (decided)']] as const) {
    const c = decision.cases[name]!;
    line(`| ${label} | ${us(median(c.bare!))} | +${us(pairedDiff(c.emf!, c.bare!))} | +${us(pairedDiff(c.full!, c.bare!))} |`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runOpsBench().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}

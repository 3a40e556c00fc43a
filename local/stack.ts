import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { generateToken, hashSecret } from '../core/identity/token-format';
import { ensureTable } from '../core/store/dynamo/table';
import { buildHandlers } from '../functions/apps';
import { createRuntime } from '../functions/runtime';
import { startDynamoLocal, type RunningDynamo } from './dynamodb-local';
import { createLocalGateway } from './gateway';
import { startLocalIssuer, type LocalIssuer } from './oidc';
import { seedRoutes } from './seed-routes';

/** A problem the newcomer can fix, printed as one line (no stack trace). */
export class StackError extends Error {}

export interface StackOptions {
  port?: number;
  dynamoPort?: number;
  dataDir?: string;
  inMemory?: boolean;
  authTtlSeconds?: number;
  /** Extra environment for the runtime (GATEHOUSE_ISSUERS, GATEHOUSE_CACHE_TTL_SECONDS, …). */
  env?: Record<string, string | undefined>;
  log?: (line: string) => void;
  /** Also print the handlers' structured JSON log lines (default: only the gateway's one line per request). */
  jsonLogs?: boolean;
  /** The Java launcher to look for (tests point it at a missing one). */
  javaCommand?: string;
}

export interface Stack {
  url: string;
  port: number;
  dynamoPort: number;
  dataDir?: string;
  issuer?: LocalIssuer;
  /** Set on the first run only: the bootstrap site-admin token. */
  bootstrapToken?: string;
  stop(): Promise<void>;
}


function javaAvailable(command: string): boolean {
  const r = spawnSync(command, ['-version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

async function listen(server: Server, port: number, what: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new StackError(`port ${port} for ${what} is already in use: stop whatever holds it or set ${what === 'the API' ? 'PORT' : 'GATEHOUSE_DYNAMODB_PORT'}`) : err);
    });
    server.listen(port, '127.0.0.1', () => resolvePort((server.address() as AddressInfo).port));
  });
}

async function portFree(port: number): Promise<boolean> {
  if (port === 0) return true;
  const probe = createServer();
  try {
    await listen(probe, port, 'probe');
    return true;
  } catch {
    return false;
  } finally {
    await new Promise((r) => probe.close(r));
  }
}

/**
 * Starts everything a newcomer needs on one machine: DynamoDB Local (official jar),
 * the table from the one schema, seeded route policies, a bootstrap site-admin
 * token on first run, a local OIDC issuer (unless GATEHOUSE_ISSUERS is set), and a
 * local API Gateway running the real handlers.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const log = options.log ?? ((l: string) => console.log(l));
  if (!javaAvailable(options.javaCommand ?? 'java')) throw new StackError('Java is not installed: DynamoDB Local needs a Java runtime (e.g. `apt-get install default-jre-headless`, or any JDK 17+).');
  const dataDir = options.inMemory ? undefined : resolve(options.dataDir ?? '.gatehouse');
  if (dataDir) mkdirSync(join(dataDir, 'dynamodb'), { recursive: true });
  const dynamoPort = options.dynamoPort ?? 8000;
  if (!(await portFree(dynamoPort))) throw new StackError(`port ${dynamoPort} for DynamoDB Local is already in use: stop whatever holds it or set GATEHOUSE_DYNAMODB_PORT`);
  // The local issuer runs unless the environment names issuers of its own.
  const issuerPort = Number(options.env?.GATEHOUSE_OIDC_PORT ?? 0);
  if (!options.env?.GATEHOUSE_ISSUERS && !(await portFree(issuerPort))) throw new StackError(`port ${issuerPort} for the local OIDC issuer is already in use: stop whatever holds it or set GATEHOUSE_OIDC_PORT`);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    const dynamo: RunningDynamo = await startDynamoLocal({ ...(dynamoPort ? { port: dynamoPort } : {}), ...(dataDir ? { path: join(dataDir, 'dynamodb') } : {}) });
    stops.push(() => dynamo.stop());
    const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    // Locally, role and token changes should show quickly: 5 s unless told otherwise.
    const env: Record<string, string | undefined> = { GATEHOUSE_CACHE_TTL_SECONDS: '5', ...options.env };
    const tableName = env.GATEHOUSE_TABLE || 'gatehouse';
    await ensureTable(client, tableName);

    let issuer: LocalIssuer | undefined;
    if (!env.GATEHOUSE_ISSUERS) {
      issuer = await startLocalIssuer({ ...(dataDir ? { dataDir } : {}), port: issuerPort });
      stops.push(() => issuer!.stop());
      env.GATEHOUSE_ISSUERS = JSON.stringify([issuer.config]);
      if (dataDir) writeFileSync(join(dataDir, 'oidc-issuer'), issuer.issuer);
    }
    // Shadow-mode counts reach the report as often as the local caches turn over (AWS: once a minute per container).
    const shadowFlushMs = Math.max(1, Number(env.GATEHOUSE_CACHE_TTL_SECONDS) || 5) * 1000;
    const rt = createRuntime({ ...env, GATEHOUSE_TABLE: tableName }, { client, shadowFlushMs, ...(options.jsonLogs ? {} : { logSink: () => {} }) });
    const now = Math.floor(Date.now() / 1000);
    const policy = await rt.store.loadPolicy();
    if (policy.routes.length === 0) {
      await rt.store.policy.putRoutes(seedRoutes(), now, 'local-seed');
    }
    let bootstrapToken: string | undefined;
    const tokenFile = dataDir ? join(dataDir, 'bootstrap-token') : undefined;
    if (!tokenFile || !existsSync(tokenFile)) {
      const t = generateToken();
      await rt.store.tokens.createToken({ id: t.id, kind: 'site', name: 'bootstrap', secretHash: hashSecret(t.secret), createdAt: now, expiresAt: now + 365 * 86400, createdBy: 'local-bootstrap' });
      bootstrapToken = t.token;
      if (tokenFile) {
        writeFileSync(tokenFile, t.token + '\n', { mode: 0o600 });
        chmodSync(tokenFile, 0o600);
      }
    }
    const handlers = buildHandlers(rt);
    // The admin API's authorizer: the same code, pinned to the built-in admin policy set.
    const adminRt = createRuntime({ ...env, GATEHOUSE_TABLE: tableName, GATEHOUSE_POLICY_SET: 'admin' }, { client, ...(options.jsonLogs ? {} : { logSink: () => {} }) });
    const authTtlSeconds = options.authTtlSeconds ?? 5;
    const upstream = env.GATEHOUSE_LOCAL_UPSTREAM?.trim() || undefined;
    if (upstream !== undefined && !/^https?:\/\/[^/]/.test(upstream)) throw new StackError(`GATEHOUSE_LOCAL_UPSTREAM: expected an http(s) URL, got ${JSON.stringify(upstream)}`);
    const gateway = createLocalGateway({ handlers, adminAuthorizer: buildHandlers(adminRt).httpIam, authTtlSeconds, log, ...(upstream ? { upstream } : {}) });
    const server = createServer((req, res) => void gateway(req, res));
    const port = await listen(server, options.port ?? 3000, 'the API');
    stops.push(() => new Promise<void>((r) => server.close(() => r())));
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      dynamoPort: dynamo.port,
      ...(dataDir ? { dataDir } : {}),
      ...(issuer ? { issuer } : {}),
      ...(bootstrapToken ? { bootstrapToken } : {}),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Reads the bootstrap token written on the first run. */
export function readBootstrapToken(dataDir: string): string | undefined {
  const f = join(dataDir, 'bootstrap-token');
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
}

/**
 * The six Lambda handler modules, run the way Lambda's Node.js runtime runs them with
 * `LogFormat: JSON` (a child process whose console is patched like the runtime's, see
 * lambda-child.ts), driven with real credentials against DynamoDB Local. What reaches
 * stdout is what CloudWatch receives, line by line: every line must be our JSON (a line
 * that went through console.* would come out wrapped in the runtime's own object), carry
 * level, message, timestamp, service and the invocation's ids, label errors ERROR, end
 * each invocation with one EMF document, and hold no credential, hash or JWT.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { sha256Base64url } from '../../core/identity/digest';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import { freePort } from '../../local/dynamodb-local';
import { arn, PURE_ROUTES } from '../authorizer/fixtures';
import { emfProblems } from '../support/emf';
import { tokenContext, userContext } from '../support/events';
import { makeIssuer } from '../support/jwt';
import { secretsIn } from '../support/log-scan';
import { TestClock, testRuntime } from '../support/runtime';

const ROOT = resolve(import.meta.dirname, '../..');
const FN = 'gatehouse-test-Function';

interface Call {
  module: string;
  event: unknown;
  requestId: string;
  trace: string;
  /** The trace id the lines must carry (the Root of `trace`). */
  root: string;
  /** API Gateway's request id in the event, if any. */
  gatewayId?: string;
}

async function run() {
  const idp = await makeIssuer();
  const down = await makeIssuer({ issuer: 'https://keys-down.test/' });
  // Nothing listens there: the key set cannot be fetched.
  const downConfig = { issuer: down.issuer, audience: 'api', userIdPrefix: 'down|', jwksUri: `http://127.0.0.1:${await freePort()}/jwks.json`, algorithms: ['RS256'] };
  const issuers = JSON.stringify([idp.config, downConfig]);
  const rt = await testRuntime({ env: { GATEHOUSE_ISSUERS: issuers }, clock: new TestClock(Date.now()) });
  const now = rt.clock.seconds;
  await rt.store.policy.putRoutes(PURE_ROUTES, now);
  await rt.store.users.putMembership('acme', 'alice', ['org-viewer'], now);
  await rt.store.users.putSiteRoles('root', ['site-admin'], now);
  const site = generateToken();
  await rt.store.tokens.createToken({ id: site.id, kind: 'site', name: 'ops-test', scopes: ['project:list'], secretHash: hashSecret(site.secret), createdAt: now, expiresAt: now + 3600 });
  const unknown = generateToken();
  const alice = await idp.sign('alice', now);
  const carol = await down.sign('carol', now);

  let seq = 0;
  const calls: Call[] = [];
  const call = (module: string, event: unknown) => {
    const n = ++seq;
    const root = `1-5f84c7a1-${String(n).padStart(24, '0')}`;
    const gatewayId = (event as { requestContext?: { requestId?: string } }).requestContext?.requestId;
    calls.push({ module, event, requestId: `lambda-req-${n}`, trace: `Root=${root};Parent=53995c3f42cd8ad8;Sampled=1`, root, ...(gatewayId ? { gatewayId } : {}) });
  };
  const tokenEvent = (credential: string, method: string, path: string) => ({ type: 'TOKEN', authorizationToken: `Bearer ${credential}`, methodArn: arn(method, path) });
  const httpAuth = (credential: string, method: string, path: string, id: string) => ({
    version: '2.0', type: 'REQUEST', routeArn: arn(method, path), headers: { authorization: `Bearer ${credential}` }, requestContext: { requestId: id, http: { method, path, sourceIp: '203.0.113.9' } },
  });
  const api = (method: string, path: string, id: string, context?: Record<string, unknown>, body?: unknown) => ({
    version: '2.0', routeKey: '$default', rawPath: path, rawQueryString: '', headers: { 'content-type': 'application/json', authorization: `Bearer ${alice}` },
    ...(body !== undefined ? { body: JSON.stringify(body), isBase64Encoded: false } : {}),
    requestContext: { http: { method, path, sourceIp: '203.0.113.9' }, stage: '$default', requestId: id, ...(context ? { authorizer: { lambda: context } } : {}) },
  });

  call('functions/authorizer/rest.ts', tokenEvent(alice, 'GET', '/orgs/acme/projects')); // allow
  call('functions/authorizer/rest.ts', tokenEvent(alice, 'GET', '/orgs/acme/projects')); // allow, again
  call('functions/authorizer/rest.ts', { type: 'REQUEST', methodArn: arn('DELETE', '/orgs/acme/projects/p1'), headers: { Authorization: `Bearer ${alice}` }, requestContext: { requestId: 'apigw-rest-1' } }); // deny
  call('functions/authorizer/rest.ts', tokenEvent(unknown.token, 'GET', '/orgs/acme/projects')); // 401: unknown token
  call('functions/authorizer/http.ts', httpAuth(site.token, 'GET', '/orgs/acme/projects', 'apigw-http-1')); // allow (site token)
  call('functions/authorizer/http.ts', httpAuth(carol, 'GET', '/orgs/acme/projects', 'apigw-http-2')); // key set down: fail closed
  call('functions/authorizer/websocket.ts', { type: 'REQUEST', methodArn: arn('GET', '/$connect'), headers: { Authorization: `Bearer ${alice}` }, requestContext: { requestId: 'apigw-ws-1', routeKey: '$connect' } });
  call('functions/tokens.ts', api('POST', '/tokens', 'apigw-tokens-1', userContext('root'), { name: 'ci' })); // 201, a secret in the body
  call('functions/invitations.ts', api('GET', '/invitations', 'apigw-inv-1', userContext('alice', 'alice@example.com')));
  call('functions/admin.ts', api('GET', '/me', 'apigw-admin-1', tokenContext(site.id, `token:${site.id}`)));
  call('functions/admin.ts', api('POST', '/orgs', 'apigw-admin-2', userContext('root'), { name: 7 })); // 400
  call('functions/admin.ts', api('GET', '/me', 'apigw-admin-3')); // no authorizer context: 401

  const env = {
    GATEHOUSE_TABLE: rt.tableName,
    GATEHOUSE_ISSUERS: issuers,
    AWS_LAMBDA_FUNCTION_NAME: FN,
    AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    // This machine's Node is older than Lambda's nodejs22.x, and the SDK warns about it (through console.error).
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const main = child(calls, env);
  // GATEHOUSE_LOG_LEVEL unset and Lambda's own level WARN: an allow and a fail-closed failure.
  const quiet = child([calls[0]!, calls[5]!], { ...env, AWS_LAMBDA_LOG_LEVEL: 'WARN' });
  const secrets = [alice, carol, site.token, site.secret, unknown.token, unknown.secret, hashSecret(site.secret), hashSecret(unknown.secret), sha256Base64url(alice), sha256Base64url(site.token)];
  return { calls, answers: main.answers, stdout: main.stdout, quiet: quiet.stdout, secrets };
}

/** Runs `calls` in a fresh child process (lambda-child.ts) with `env`: its answers and its stdout. */
function child(calls: Call[], env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-lambda-'));
  const out = join(dir, 'answers.json');
  const planFile = join(dir, 'plan.json');
  writeFileSync(planFile, JSON.stringify({ out, calls, env }));
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'test/ops/lambda-child.ts'), planFile], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, NO_COLOR: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`lambda child failed (${r.status}): ${r.stderr}`);
  return { answers: JSON.parse(readFileSync(out, 'utf8')) as { requestId: string; answer?: any; error?: string }[], stdout: r.stdout };
}

describe('Lambda handlers under LogFormat JSON: what stdout carries', () => {
  let r: Awaited<ReturnType<typeof run>>;
  let lines: Record<string, unknown>[];
  beforeAll(async () => {
    r = await run();
    lines = r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  }, 90_000);

  it('the script did what it says (allow, allow again, deny, 401, allow, fail closed, connect, 201, 200, 200, 400, 401)', () => {
    const a = r.answers;
    expect(a.map((x) => x.error ?? x.answer?.policyDocument?.Statement?.[0]?.Effect ?? x.answer?.isAuthorized ?? x.answer?.statusCode)).toEqual([
      'Allow', 'Allow', 'Deny', 'Unauthorized', true, false, 'Allow', 201, 200, 200, 400, 401,
    ]);
  });

  it('every line parses, is ours (not wrapped by the runtime), and carries level, message, timestamp, service and the request ids', () => {
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(lines.length).toBeGreaterThan(r.calls.length);
    for (const l of lines) {
      expect(l.service, JSON.stringify(l)).toBe('gatehouse');
      expect(['DEBUG', 'INFO', 'WARN', 'ERROR']).toContain(l.level);
      expect(typeof l.message === 'string' && l.message !== '').toBe(true);
      expect(new Date(l.timestamp as string).toISOString()).toBe(l.timestamp);
      const call = r.calls.find((c) => c.requestId === l.function_request_id);
      expect(call, `${String(l.message)} has Lambda's request id`).toBeDefined();
      expect(l.xray_trace_id).toBe(call!.root);
      expect(l.correlation_id).toBe(call!.gatewayId);
      expect(typeof l.cold_start).toBe('boolean');
    }
    // The event's own fields stay top level, where Logs Insights filters on them.
    expect(lines.find((l) => l.message === 'authorizer.decision' && l.effect === 'deny')).toMatchObject({ flavour: 'rest-request', reason: 'no-permission', correlation_id: 'apigw-rest-1' });
    expect(lines.filter((l) => l.cold_start === true).every((l) => l.function_request_id === 'lambda-req-1')).toBe(true);
  });

  it('errors are ERROR: the fail-closed failure and its decision', () => {
    const failed = lines.filter((l) => l.function_request_id === 'lambda-req-6' && l.message !== 'metrics');
    expect(failed.find((l) => l.message === 'authorizer.fail-closed')).toMatchObject({ level: 'ERROR', reason: 'jwks-unreachable' });
    expect(failed.find((l) => l.message === 'authorizer.decision')).toMatchObject({ level: 'ERROR', effect: 'error' });
    for (const l of lines) if (l.level === 'ERROR') expect(['authorizer.fail-closed', 'authorizer.decision']).toContain(l.message);
  });

  it("Lambda's log level applies when GATEHOUSE_LOG_LEVEL is unset (WARN: no INFO line but the metrics, which never depend on the level)", () => {
    const quiet = r.quiet.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    const info = quiet.filter((l) => l.level === 'INFO').map((l) => l.message);
    expect(info.length).toBeGreaterThanOrEqual(2);
    expect(new Set(info)).toEqual(new Set(['metrics']));
    expect(quiet.filter((l) => l.level === 'ERROR').map((l) => l.message).sort()).toEqual(['authorizer.decision', 'authorizer.fail-closed']);
    expect(lines.some((l) => l.level === 'INFO' && l.message === 'authorizer.decision')).toBe(true); // at the default level, INFO is written
  });

  it('each authorizer invocation ends with its EMF documents in one flush (one without a cache dimension, one per cache at most once a minute); an admin one with none when it measured nothing', () => {
    for (const c of r.calls) {
      const own = lines.filter((l) => l.function_request_id === c.requestId);
      const emf = own.filter((l) => '_aws' in l);
      if (!c.module.includes('/authorizer/') && emf.length === 0) continue;
      expect(emf.length, c.requestId).toBeGreaterThanOrEqual(1);
      expect(new Set(emf.map((d) => d.Cache ?? '')).size, `${c.requestId}: one document per cache`).toBe(emf.length);
      expect(own.slice(own.length - emf.length), c.requestId).toEqual(emf);
      for (const doc of emf) {
        expect(emfProblems(doc), JSON.stringify(doc)).toEqual([]);
        expect(doc).toMatchObject({ FunctionName: FN });
      }
    }
  });

  it('no line holds a credential, a token hash or a JWT (the ones used here, or anything shaped like one)', () => {
    expect(r.stdout).not.toMatch(/Bearer/i);
    for (const line of r.stdout.split('\n')) expect(secretsIn(line, r.secrets), line).toEqual([]);
  });
});

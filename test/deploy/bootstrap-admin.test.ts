import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { buildHandlers } from '../../functions/apps';
import { createRuntime } from '../../functions/runtime';
import { FUNCTIONS } from '../../infra/handlers';
import { bootstrapAdmin, NO_ROUTES_NOTE, parseArgs } from '../../scripts/bootstrap-admin';
import { freshTable } from '../support/dynamo';
import { httpEvent } from '../support/events';
import { iamAllows, type PolicyLike } from '../support/iam';

const API = 'arn:aws:execute-api:us-east-1:123456789012:abc123/$default';
const NOW = Date.UTC(2026, 10, 22, 12) / 1000;

/** An HTTP API (payload 2.0) authorizer event for a route of the admin API. */
function authEvent(method: string, path: string, routeKey: string, token: string) {
  return {
    version: '2.0', type: 'REQUEST', routeArn: `${API}/${method}${path}`, routeKey, rawPath: path,
    headers: { authorization: `Bearer ${token}` }, identitySource: [`Bearer ${token}`, routeKey],
    requestContext: { http: { method, path, sourceIp: '198.51.100.7' }, stage: '$default' },
  };
}

/** A runtime as a deployed function has it: the table, quiet logs, and the function's own settings from infra/handlers.ts. */
async function deployment(fn: keyof typeof FUNCTIONS = 'admin') {
  const { client, tableName } = await freshTable();
  const own = (FUNCTIONS[fn] as { environment?: Record<string, string> }).environment ?? {};
  const rt = createRuntime({ GATEHOUSE_TABLE: tableName, GATEHOUSE_LOG_LEVEL: 'error', ...own }, { client, now: () => NOW * 1000, logSink: () => {} });
  return { client, tableName, rt, h: buildHandlers(rt) };
}

describe('bootstrap-admin', () => {
  it('turns a fresh table into a usable admin API: the token passes the HTTP authorizer and acts as a site admin', async () => {
    const { client, tableName, rt, h } = await deployment('adminAuthorizer');
    expect((await rt.store.loadPolicy()).routes).toEqual([]);

    const out = await bootstrapAdmin({ client, tableName, userId: 'operator', now: NOW });
    expect(out.token.startsWith(`gat_${out.tokenId}_`)).toBe(true);
    expect(out.expiresAt).toBe(NOW + 30 * 86400);
    // Nothing is stored for the admin API: the built-in admin set decides it.
    expect(await rt.store.loadPolicy()).toMatchObject({ routes: [], version: '0.0' });

    // The stored record: a site token with no scopes (all site rights), hash only.
    const record = await rt.store.tokens.getToken(out.tokenId);
    expect(record).toMatchObject({ id: out.tokenId, kind: 'site', name: 'bootstrap', createdBy: 'bootstrap-admin', expiresAt: NOW + 30 * 86400 });
    expect(record!.scopes).toBeUndefined();
    expect(JSON.stringify(record)).not.toContain(out.token.slice(`gat_${out.tokenId}_`.length, -6));
    expect(await rt.store.users.getSiteRoles('operator')).toEqual(['site-admin']);

    // The deployed path: the admin API's authorizer (pinned to the admin set, IAM answer), then the admin function with its context.
    const answer = (await h.http(authEvent('POST', '/orgs', 'POST /orgs', out.token) as never)) as PolicyLike & { principalId: string; context: Record<string, string> };
    expect(answer.principalId).toBe(`token:${out.tokenId}`);
    expect(iamAllows(answer, `${API}/POST/orgs`)).toBe(true);
    const created = await h.admin(httpEvent('POST', '/orgs', { body: { id: 'acme', name: 'Acme' }, context: answer.context }));
    expect(created.statusCode).toBe(201);
    // Site-admin-equivalent: it may create a site token too.
    const site = await h.tokens(httpEvent('POST', '/site/tokens', { body: { name: 'ci' }, context: answer.context }));
    expect(site.statusCode).toBe(201);
    // The user given site-admin is one too.
    const me = await h.admin(httpEvent('GET', '/me', { context: { principalId: 'operator', userId: 'operator', kind: 'user' } }));
    expect(JSON.parse(me.body)).toMatchObject({ siteRoles: ['site-admin'] });
  });

  it('runs again without duplicating roles, and never touches the route table', async () => {
    const { client, tableName, rt } = await deployment();
    const mine = { route: 'GET /orgs', resource: 'org', action: 'list', condition: 'principal.emailVerified == true' };
    const other = { route: 'GET /health', resource: 'health', action: 'read', public: true };
    await rt.store.policy.putRoutes([mine, other], NOW);
    await rt.store.users.putSiteRoles('operator', ['site-viewer'], NOW);
    const before = await rt.store.loadPolicy();

    const first = await bootstrapAdmin({ client, tableName, userId: 'operator', now: NOW, expiresInDays: 1 });
    const second = await bootstrapAdmin({ client, tableName, userId: 'operator', now: NOW });
    expect(second.tokenId).not.toBe(first.tokenId);

    expect(await rt.store.loadPolicy()).toEqual(before);
    expect(await rt.store.users.getSiteRoles('operator')).toEqual(['site-viewer', 'site-admin']);
  });

  it('bad lifetimes are refused before writing', async () => {
    const { client, tableName } = await deployment();
    await expect(bootstrapAdmin({ client, tableName, expiresInDays: 0 })).rejects.toThrow(/1\.\.3650/);
    await expect(bootstrapAdmin({ client, tableName, expiresInDays: 1.5 })).rejects.toThrow(/1\.\.3650/);
    expect((await client.send(new ScanCommand({ TableName: tableName }))).Items).toEqual([]);
  });

  it('parses its command line', () => {
    expect(parseArgs(['--table', 't1', '--user', 'u1', '--days', '7'], {})).toEqual({ tableName: 't1', userId: 'u1', days: 7, notes: [] });
    // --no-routes still parses (scripts pass it), and says it is no longer needed.
    expect(parseArgs(['--no-routes'], { GATEHOUSE_TABLE: 'from-env' })).toEqual({ tableName: 'from-env', days: 30, notes: [NO_ROUTES_NOTE] });
    expect(parseArgs([], {})).toMatch(/no table/);
    expect(parseArgs(['--table'], {})).toMatch(/--table needs a value/);
    expect(parseArgs(['--table', 't', '--days', '0'], {})).toMatch(/--days/);
    expect(parseArgs(['--table', 't', '--days', '1e3'], {})).toMatch(/--days/);
    expect(parseArgs(['--tabel', 't'], {})).toMatch(/unknown argument/);
  });

  it('the CLI prints the token alone on stdout, once, with the operator\'s AWS settings', async () => {
    const { tableName } = await freshTable();
    const env = {
      PATH: process.env.PATH ?? '',
      AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
      AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local',
      GATEHOUSE_TABLE: tableName,
    };
    const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', resolve('scripts/bootstrap-admin.ts'), ...args], { env, encoding: 'utf8', timeout: 30_000 });
    const ok = run(['--user', 'operator', '--days', '2', '--no-routes']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stderr).toContain(NO_ROUTES_NOTE);
    const lines = ok.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gat_[0-9A-Za-z]{16}_[0-9A-Za-z]{38}$/);
    expect(ok.stderr).toContain('operator holds site-admin');
    expect(ok.stderr).not.toContain(lines[0]);
    const usage = run(['--days', 'x']);
    expect(usage.status).toBe(2);
    expect(usage.stdout).toBe('');
  }, 40_000);
});

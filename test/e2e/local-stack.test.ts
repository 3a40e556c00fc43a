import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/dynamodb-local';
import { fetchLocalToken } from '../../local/oidc-client';
import { readBootstrapToken, StackError, startStack, type Stack } from '../../local/stack';

async function api(stack: Stack, method: string, path: string, credential?: string, body?: unknown) {
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers: { ...(credential ? { authorization: `Bearer ${credential}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = () => {};

describe('npm start: the README quickstart over real HTTP', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ inMemory: true, port: 0, dynamoPort: await freePort(), authTtlSeconds: 1, env: { GATEHOUSE_CACHE_TTL_SECONDS: '1', GATEHOUSE_LOG_LEVEL: 'error' }, log: quiet });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('bootstrap token -> org -> invite -> JWT from the local OIDC provider -> accept -> token -> demo -> revoke -> refused', async () => {
    const boot = stack.bootstrapToken!;
    expect(boot).toMatch(/^gat_/);
    expect((await api(stack, 'GET', '/me', boot)).body).toMatchObject({ kind: 'token', token: { kind: 'site' } });
    expect((await api(stack, 'POST', '/orgs', boot, { id: 'acme', name: 'Acme' })).status).toBe(201);
    expect((await api(stack, 'POST', '/orgs/acme/invitations', boot, { email: 'alice@example.com', role: 'org-admin' })).status).toBe(201);

    const jwt = await fetchLocalToken(stack.issuer!.tokenUrl, 'alice', 'Alice@Example.com');
    const mine = await api(stack, 'GET', '/invitations', jwt);
    expect(mine.status).toBe(200);
    const invitation = mine.body.items[0];
    expect((await api(stack, 'POST', `/invitations/${invitation.id}/accept`, jwt)).status).toBe(200);

    await sleep(1100); // alice's roles were cached before she joined
    const created = await api(stack, 'POST', '/tokens', jwt, { name: 'laptop', expiresInDays: 30 });
    expect(created.status).toBe(201);
    const token = created.body.token as string;
    const demo = await api(stack, 'GET', '/demo/orgs/acme/hello', token);
    expect(demo.status).toBe(200);
    expect(demo.body).toMatchObject({ method: 'GET', path: '/demo/orgs/acme/hello', context: { principalId: 'alice', kind: 'token', tokenId: created.body.id } });
    expect((await api(stack, 'GET', '/demo/orgs/globex/hello', token)).status).toBe(403);

    expect((await api(stack, 'DELETE', `/tokens/${created.body.id}`, jwt)).status).toBe(204);
    await sleep(2200); // local gateway cache + in-Lambda cache
    expect((await api(stack, 'GET', '/demo/orgs/acme/hello', token)).status).toBe(401);
  });

  it('API Gateway semantics: 401 without or with a bad credential, 404 for unknown routes', async () => {
    expect((await api(stack, 'GET', '/me')).status).toBe(401);
    expect((await api(stack, 'GET', '/me', 'gat_nope')).status).toBe(401);
    expect((await api(stack, 'GET', '/nowhere', stack.bootstrapToken)).status).toBe(404);
  });

  it('a cached authorizer answer is right on other routes, both ways', async () => {
    const jwt = await fetchLocalToken(stack.issuer!.tokenUrl, 'bob', 'bob@example.com');
    await api(stack, 'PUT', '/orgs/acme/members/bob', stack.bootstrapToken, { roles: ['org-viewer'] });
    await sleep(1100);
    // The first call caches bob's answer (keyed by identity source only, like API Gateway): a Deny...
    expect((await api(stack, 'GET', '/demo/orgs/acme/a', jwt)).status).toBe(403); // org-viewer may not "write"
    // ...that neither blocks what bob may use...
    expect((await api(stack, 'GET', '/me', jwt)).status).toBe(200);
    expect((await api(stack, 'GET', '/orgs/acme', jwt)).status).toBe(200);
    // ...nor opens what he may not.
    expect((await api(stack, 'POST', '/demo/orgs/acme/b', jwt)).status).toBe(403);
    expect((await api(stack, 'GET', '/demo/orgs/globex/c', jwt)).status).toBe(403);
  });
});

describe('restart with the same data directory', () => {
  it('keeps tokens and memberships, and the bootstrap token is written once with mode 0600', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-data-'));
    const first = await startStack({ dataDir, port: 0, dynamoPort: await freePort(), authTtlSeconds: 0, env: { GATEHOUSE_LOG_LEVEL: 'error' }, log: quiet });
    let token: string;
    try {
      const boot = first.bootstrapToken!;
      expect(readBootstrapToken(dataDir)).toBe(boot);
      expect(statSync(join(dataDir, 'bootstrap-token')).mode & 0o777).toBe(0o600);
      await api(first, 'POST', '/orgs', boot, { id: 'keep', name: 'Keep' });
      await api(first, 'PUT', '/orgs/keep/members/kim', boot, { roles: ['org-admin'] });
      const created = await api(first, 'POST', '/site/tokens', boot, { name: 'ci', scopes: ['org:read', 'membership:list'] });
      expect(created.status).toBe(201);
      token = created.body.token;
    } finally {
      await first.stop();
    }
    const second = await startStack({ dataDir, port: 0, dynamoPort: await freePort(), authTtlSeconds: 0, env: { GATEHOUSE_LOG_LEVEL: 'error' }, log: quiet });
    try {
      expect(second.bootstrapToken).toBeUndefined();
      const members = await api(second, 'GET', '/orgs/keep/members', token);
      expect(members.status).toBe(200);
      expect(members.body.items.map((m: { userId: string }) => m.userId)).toContain('kim');
      expect((await api(second, 'GET', '/me', readBootstrapToken(dataDir))).status).toBe(200);
    } finally {
      await second.stop();
    }
    // Two full stack starts (two JVMs): ~32 s alone on a shared 2-core machine.
  }, 90_000);
});

describe('clear messages instead of stack traces', () => {
  it('when Java is missing', async () => {
    await expect(startStack({ inMemory: true, port: 0, dynamoPort: await freePort(), javaCommand: 'java-that-is-not-installed', log: quiet })).rejects.toThrow(/Java is not installed/);
  });

  it('when a port is taken', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      await expect(startStack({ inMemory: true, port: 0, dynamoPort: port, log: quiet })).rejects.toThrow(new RegExp(`port ${port} for DynamoDB Local is already in use`));
      await expect(startStack({ inMemory: true, port, dynamoPort: await freePort(), env: { GATEHOUSE_LOG_LEVEL: 'error' }, log: quiet })).rejects.toThrow(new RegExp(`port ${port} for the API is already in use`));
      // The local OIDC issuer's port: a StackError naming the variable, not a raw EADDRINUSE.
      const issuerTaken = startStack({ inMemory: true, port: 0, dynamoPort: await freePort(), env: { GATEHOUSE_LOG_LEVEL: 'error', GATEHOUSE_OIDC_PORT: String(port) }, log: quiet });
      await expect(issuerTaken).rejects.toBeInstanceOf(StackError);
      await expect(issuerTaken).rejects.toThrow(new RegExp(`port ${port} for the local OIDC issuer is already in use.*GATEHOUSE_OIDC_PORT`));
    } finally {
      blocker.close();
    }
  }, 60_000);
});

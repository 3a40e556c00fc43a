import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHandlers } from '../../functions/apps';
import { createRuntime } from '../../functions/runtime';
import { createLocalGateway, requestLine } from '../../local/gateway';
import { seedRoutes } from '../../local/seed-routes';
import { makeIssuer } from '../support/jwt';
import { testRuntime } from '../support/runtime';

describe('the local gateway prints one readable line per request', () => {
  let server: Server;
  let base: string;
  const printed: string[] = [];
  let rt: Awaited<ReturnType<typeof testRuntime>>;
  let alice: string;
  let bob: string;
  let root: string;

  beforeAll(async () => {
    const idp = await makeIssuer();
    rt = await testRuntime({ env: { GATEHOUSE_ISSUERS: JSON.stringify([idp.config]) } });
    const now = rt.clock.seconds;
    await rt.store.policy.putRoutes(seedRoutes(), now);
    await rt.store.orgs.createOrg({ id: 'acme', name: 'Acme', createdAt: now });
    await rt.store.users.putMembership('acme', 'alice', ['org-admin'], now);
    await rt.store.users.putMembership('acme', 'bob', ['org-viewer'], now);
    alice = await idp.sign('alice', now);
    bob = await idp.sign('bob', now);
    await rt.store.users.putSiteRoles('root', ['site-admin'], now);
    root = await idp.sign('root', now);
    // The admin API's authorizer: pinned to the admin set, writing to the same log.
    const adminRt = createRuntime({ GATEHOUSE_TABLE: rt.tableName, GATEHOUSE_ISSUERS: JSON.stringify([idp.config]), GATEHOUSE_POLICY_SET: 'admin', GATEHOUSE_LOG_LEVEL: 'debug' }, { client: rt.store.db.client, now: rt.clock.now, logSink: (l) => rt.logs.push(l) });
    const gateway = createLocalGateway({ handlers: buildHandlers(rt), adminAuthorizer: buildHandlers(adminRt).httpIam, authTtlSeconds: 5, now: rt.clock.now, log: (l) => printed.push(l) });
    server = createServer((req, res) => void gateway(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
  });

  /** The line printed for one request. */
  const lineFor = async (method: string, path: string, credential?: string, body?: unknown) => {
    const from = printed.length;
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(credential ? { authorization: `Bearer ${credential}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    await res.text();
    expect(printed.length - from).toBe(1);
    return printed[from]!;
  };

  it('says why a call was refused: method, path, status, outcome, reason code', async () => {
    expect(await lineFor('GET', '/me')).toBe('GET /me -> 401 unauthorized reason=no-credential');
    expect(await lineFor('GET', '/me', 'gat_short')).toMatch(/^GET \/me -> 401 unauthorized reason=(token|credential)-malformed$/);
    expect(await lineFor('GET', '/demo/orgs/acme/report', bob)).toBe('GET /demo/orgs/acme/report -> 403 deny reason=no-permission');
    expect(await lineFor('GET', '/nowhere', bob)).toBe('GET /nowhere -> 404');
  });

  it('says when the answer came from its API\'s gateway cache, and for which route it was decided', async () => {
    // bob's answer above was decided for one demo route and is reused for the demo API's other routes...
    expect(await lineFor('GET', '/demo/orgs/acme/other', bob)).toBe('GET /demo/orgs/acme/other -> 403 deny cached (decided for GET /demo/orgs/acme/report)');
    expect(await lineFor('GET', '/demo/orgs/acme/report', bob)).toBe('GET /demo/orgs/acme/report -> 403 deny reason=no-permission cached');
    // ...but the admin API is another API, with a cache of its own.
    expect(await lineFor('GET', '/me', bob)).toBe('GET /me -> 200 allow reason=public');
    expect(await lineFor('GET', '/me', bob)).toBe('GET /me -> 200 allow reason=public cached');
  });

  it("an allowed call shows the decision's reason, and an admin function's own refusal code", async () => {
    expect(await lineFor('GET', '/demo/orgs/acme/report', alice)).toBe('GET /demo/orgs/acme/report -> 200 allow reason=allow');
    expect(await lineFor('POST', '/orgs', root, { name: 7 })).toBe('POST /orgs -> 400 allow reason=allow admin=invalid-field');
  });

  it("the handlers' structured lines carry the local request id as API Gateway's", () => {
    const decisions = rt.logs.map((l) => JSON.parse(l)).filter((l) => l.message === 'authorizer.decision');
    expect(decisions.length).toBeGreaterThan(0);
    for (const d of decisions) expect(d.correlation_id).toMatch(/^local-/);
  });

  it('a line never carries control characters from the request', () => {
    expect(requestLine({ method: 'GET', path: '/a\n{"forged":1}\u001b[2J', status: 404 })).toBe('GET /a?{"forged":1}?[2J -> 404');
  });
});

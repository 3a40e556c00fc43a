/**
 * Issue 15's promises, end to end through the local stack `npm start` runs (two APIs with
 * their own authorizer caches, the real handlers, DynamoDB Local, the real oidc-provider),
 * over real HTTP with the gateway's cache on:
 * - route tables where a wide route sits over a narrower one the caller may not use answer
 *   the same whether a route is called first or after any other (no entitled route left
 *   out of a cached Allow, no Deny covering an entitled one);
 * - an org viewer's cached answer never covers an admin write;
 * - a customer route `DELETE /orgs/{orgId}` in the default set is decided by its own rule;
 * - no whole-table PUT (or gate) of the default set locks an admin out of the admin API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/dynamodb-local';
import { fetchLocalToken } from '../../local/oidc-client';
import { startStack, type Stack } from '../../local/stack';
import { callGateway, type GatewayAnswer } from '../support/gateway';

const AUTH_TTL_SECONDS = 30;
const LAMBDA_TTL_SECONDS = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let stack: Stack;
let boot: string;

const call = (method: string, path: string, authorization?: string, body?: unknown, headers: Record<string, string> = {}) =>
  callGateway(stack.url, method, path, { ...(authorization !== undefined ? { authorization } : {}), ...(body !== undefined ? { body: JSON.stringify(body) } : {}), headers });

const bearer = (credential: string) => `Bearer ${credential}`;
const jwtFor = async (user: string) => bearer(await fetchLocalToken(stack.issuer!.tokenUrl, user, `${user}@example.com`));

/** Replaces the default set's route table (whatever its version) and waits out the authorizers' policy cache. */
async function useRoutes(routes: unknown[]): Promise<void> {
  const put = await call('PUT', '/policies/routes', boot, { routes }, { 'if-match': '*' });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  await sleep(LAMBDA_TTL_SECONDS * 1000 + 300);
}

/**
 * For each user: every probe decided fresh (a credential the gateway has never seen),
 * then every probe after every other probe with one credential (the answer the first call
 * cached decides the second). Returns the pairs whose answers differ.
 */
async function cacheDifferences(users: string[], probes: [string, string][]): Promise<string[]> {
  const out: string[] = [];
  for (const user of users) {
    const fresh = new Map<string, GatewayAnswer>();
    for (const [m, p] of probes) fresh.set(`${m} ${p}`, await call(m, p, await jwtFor(user)));
    for (const [pm, pp] of probes) {
      const credential = await jwtFor(user);
      const first = await call(pm, pp, credential);
      expect({ user, route: `${pm} ${pp}`, status: first.status }).toEqual({ user, route: `${pm} ${pp}`, status: fresh.get(`${pm} ${pp}`)!.status });
      for (const [m, p] of probes) {
        const cached = await call(m, p, credential);
        const f = fresh.get(`${m} ${p}`)!;
        if (cached.status !== f.status || cached.by !== f.by) out.push(`${user}: ${pm} ${pp} then ${m} ${p}: fresh ${f.status}, cached ${cached.status}`);
      }
    }
  }
  return out;
}

beforeAll(async () => {
  stack = await startStack({
    inMemory: true,
    port: 0,
    dynamoPort: await freePort(),
    authTtlSeconds: AUTH_TTL_SECONDS,
    env: { GATEHOUSE_CACHE_TTL_SECONDS: String(LAMBDA_TTL_SECONDS), GATEHOUSE_LOG_LEVEL: 'error' },
    log: () => {},
  });
  boot = bearer(stack.bootstrapToken!);
  for (const org of ['acme', 'globex']) expect((await call('POST', '/orgs', boot, { id: org, name: org })).status).toBe(201);
  expect((await call('PUT', '/orgs/acme/roles/no-hello', boot, { org: [{ resource: 'hello', action: 'delete', negate: true }] })).status).toBe(201);
  const member = async (org: string, user: string, roles: string[]) => expect([200, 201]).toContain((await call('PUT', `/orgs/${org}/members/${user}`, boot, { roles })).status);
  await member('acme', 'alice', ['org-admin', 'no-hello']);
  await member('acme', 'bob', ['org-viewer']);
  await member('globex', 'bob', ['org-admin']);
  await member('acme', 'vera', ['org-viewer']);
  await member('acme', 'dora', ['org-admin']);
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

describe('a cached answer equals a fresh decision on route tables with nested routes', () => {
  it('a route under an entitled one that the caller may not use (item:read over secret:manage)', async () => {
    await useRoutes([
      { route: 'GET /demo/items', resource: 'item', action: 'list', public: true, condition: 'principal.kind != "anonymous"' },
      { route: 'GET /demo/orgs/{orgId}/items/{itemId}', resource: 'item', action: 'read', org: '{orgId}' },
      { route: 'GET /demo/orgs/{orgId}/items/{itemId}/secret', resource: 'secret', action: 'manage', org: '{orgId}' },
    ]);
    const probes: [string, string][] = [
      ['GET', '/demo/items'],
      ['GET', '/demo/orgs/acme/items/x1'],
      ['GET', '/demo/orgs/acme/items/x1/secret'],
      ['GET', '/demo/orgs/globex/items/x1'],
      ['GET', '/demo/orgs/globex/items/x1/secret'],
      ['GET', '/demo/orgs/acme/items/x1/secret/more'],
      ['GET', '/demo/orgs/acme/items'],
      ['POST', '/demo/orgs/acme/items/x1'],
    ];
    // The viewer reads items but not secrets; a fresh decision says so, and so must the cache.
    expect((await call('GET', '/demo/orgs/acme/items/x1', await jwtFor('vera'))).status).toBe(200);
    expect((await call('GET', '/demo/orgs/acme/items/x1/secret', await jwtFor('vera'))).status).toBe(403);
    // Exact for whoever holds item:read without secret:manage (the viewer, an outsider): the
    // Allow `…/items/*` goes out with a Deny `…/items/*/*` carving off everything deeper.
    expect(await cacheDifferences(['vera', 'carol'], probes)).toEqual([]);
    // An org admin holds both. IAM cannot list `items/{itemId}` for them without also
    // allowing `items/x1/anything` (its `*` crosses `/`), which the gateway routes here
    // (`ANY /demo/{proxy+}`) and a fresh decision refuses; a Deny of `items/*/*` would take
    // their `…/secret` too. So that one route is left out of their cached answers (and
    // logged as such): the only differences are a 403 from the cache where a fresh
    // decision allows it, never the reverse.
    const admins = await cacheDifferences(['alice', 'bob'], probes);
    for (const d of admins) expect(d).toMatch(/^(alice: .* then GET \/demo\/orgs\/acme|bob: .* then GET \/demo\/orgs\/globex)\/items\/x1: fresh 200, cached 403$/);
  }, 120_000);

  it('a catch-all for org admins beside a specific route a negated permission denies', async () => {
    await useRoutes([
      { route: 'ANY /demo/orgs/{orgId}/{proxy+}', resource: 'demo', action: 'write', org: '{orgId}' },
      { route: 'DELETE /demo/orgs/{orgId}/hello', resource: 'hello', action: 'delete', org: '{orgId}' },
    ]);
    const probes: [string, string][] = [
      ['DELETE', '/demo/orgs/acme/hello'],
      ['GET', '/demo/orgs/acme/hello'],
      ['DELETE', '/demo/orgs/acme/other'],
      ['POST', '/demo/orgs/acme/x/y'],
      ['DELETE', '/demo/orgs/acme/hello/x'],
      ['DELETE', '/demo/orgs/globex/hello'],
      ['GET', '/demo/orgs/globex/x'],
      ['GET', '/demo/items'],
    ];
    // Alice is an org admin whose custom role negates hello:delete; Dora is a plain org admin.
    expect((await call('DELETE', '/demo/orgs/acme/hello', await jwtFor('alice'))).status).toBe(403);
    expect((await call('DELETE', '/demo/orgs/acme/hello', await jwtFor('dora'))).status).toBe(200);
    expect((await call('DELETE', '/demo/orgs/acme/other', await jwtFor('alice'))).status).toBe(200);
    expect(await cacheDifferences(['alice', 'dora', 'bob', 'vera'], probes)).toEqual([]);
  }, 120_000);
});

describe('the admin API is decided by its own set, with its own cache', () => {
  it("an org viewer's cached answers (admin reads, demo calls) never cover an admin write", async () => {
    const vera = await jwtFor('vera');
    for (const [m, p] of [['GET', '/me'], ['GET', '/orgs/acme'], ['GET', '/orgs/acme/members'], ['GET', '/orgs/acme/roles'], ['GET', '/demo/orgs/acme/x']] as const) await call(m, p, vera);
    expect((await call('GET', '/orgs/acme', vera)).status).toBe(200);
    const writes: [string, string, unknown][] = [
      ['PUT', '/policies/routes', { routes: [] }],
      ['PUT', '/policies/gate', { expression: null }],
      ['PUT', '/policies/sets/mine', { routes: [] }],
      ['PUT', '/policies/apis/localdemo0', { set: 'default' }],
      ['POST', '/site/tokens', { name: 'x' }],
      ['DELETE', '/orgs/acme', undefined],
      ['PUT', '/orgs/acme/members/vera', { roles: ['org-admin'] }],
      ['PUT', '/users/vera/site-roles', { roles: ['site-admin'] }],
      ['PUT', '/orgs/acme/roles/mine', { org: [] }],
    ];
    for (const [m, p, b] of writes) {
      // Refused at the gateway by the admin set: the function never runs.
      expect({ write: `${m} ${p}`, ...(await call(m, p, vera, b, { 'if-match': '*' })) }).toMatchObject({ write: `${m} ${p}`, status: 403, by: 'gateway' });
    }
    // The default set's tables never reached the admin API (it is decided by the admin set), nor the reverse.
    expect((await call('GET', '/policies/routes', boot)).body).not.toHaveProperty('routes.0.route', 'PUT /policies/routes');
  }, 60_000);

  it('a customer route DELETE /orgs/{orgId} in the default set is decided by its own rule', async () => {
    await useRoutes([{ route: 'DELETE /orgs/{orgId}', resource: 'org', action: 'delete', org: '{orgId}' }]);
    const explain = async (userId: string, apiId?: string) =>
      (await call('POST', '/authz/explain', boot, { userId, method: 'DELETE', path: '/orgs/acme', ...(apiId ? { apiId } : {}) })).body as Record<string, unknown>;
    // The demo API (bound to no set) meets the default set: its own rule, not the admin API's.
    expect(await explain('bob', 'localdemo0')).toMatchObject({ allowed: false, code: 'no-permission', route: 'DELETE /orgs/{orgId}', policySet: 'default' });
    expect(await explain('dora', 'localdemo0')).toMatchObject({ allowed: true, code: 'allow', route: 'DELETE /orgs/{orgId}', policySet: 'default' });
    expect(await explain('carol', 'localdemo0')).toMatchObject({ allowed: false, code: 'not-member', policySet: 'default' });
    // The admin API keeps its own rule for the same route key, in its own set.
    const admin = (await call('POST', '/authz/explain', boot, { userId: 'bob', method: 'DELETE', path: '/orgs/acme', set: 'admin' })).body as Record<string, unknown>;
    expect(admin).toMatchObject({ allowed: false, policySet: 'admin' });
    expect(admin.code).not.toBe('public');
    // And through the admin API's gateway: an org viewer is refused there, at the authorizer.
    expect(await call('DELETE', '/orgs/acme', await jwtFor('vera'))).toMatchObject({ status: 403, by: 'gateway' });
  }, 60_000);

  it('no whole-table PUT or gate of the default set locks an admin out of the admin API', async () => {
    await useRoutes([]);
    const gate = await call('PUT', '/policies/gate', boot, { expression: 'false' }, { 'if-match': '*' });
    expect(gate.status).toBe(200);
    await sleep(LAMBDA_TTL_SECONDS * 1000 + 300);
    // The demo API, decided by the default set, now refuses everyone...
    expect(await call('GET', '/demo/orgs/acme/x', await jwtFor('dora'))).toMatchObject({ status: 403, by: 'gateway' });
    // ...while admins still run the admin API, with a fresh credential each time (nothing cached).
    const root = bearer(((await call('POST', '/site/tokens', boot, { name: 'after-lockout' })).body as { token: string }).token);
    expect((await call('GET', '/policies/routes', root)).body).toMatchObject({ routes: [] });
    const read = await call('GET', '/policies/gate', root);
    expect(read.status).toBe(200);
    expect((await call('PUT', '/policies/gate', root, { expression: null }, { 'if-match': read.etag! })).status).toBe(200);
    expect((await call('GET', '/orgs/acme/members', await jwtFor('dora'))).status).toBe(200);
    expect((await call('PUT', '/orgs/acme/members/erin', await jwtFor('dora'), { roles: ['org-viewer'] })).status).toBe(201);
  }, 60_000);
});

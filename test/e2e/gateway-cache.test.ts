/**
 * The local API Gateway as the harness for cache correctness, over real HTTP against
 * one in-process stack (DynamoDB Local in memory, the real oidc-provider, the real
 * handlers): a cached authorizer answer applied to other routes must never be more
 * permissive than a fresh decision, revocations land once the TTLs pass, and the
 * gateway's own answers (401/403/404/413/500) follow API Gateway.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../core/identity/token-format';
import { freePort } from '../../local/dynamodb-local';
import { fetchLocalToken } from '../../local/oidc-client';
import { startStack, type Stack } from '../../local/stack';
import { callGateway, type GatewayAnswer } from '../support/gateway';

const AUTH_TTL_SECONDS = 2;
const LAMBDA_TTL_SECONDS = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let stack: Stack;

const call = (method: string, path: string, authorization?: string, body?: string) => callGateway(stack.url, method, path, { ...(authorization !== undefined ? { authorization } : {}), ...(body !== undefined ? { body } : {}) });

const bearer = (credential: string) => `Bearer ${credential}`;
const jwtFor = (user: string, email = `${user}@example.com`) => fetchLocalToken(stack.issuer!.tokenUrl, user, email);

beforeAll(async () => {
  stack = await startStack({
    inMemory: true,
    port: 0,
    dynamoPort: await freePort(),
    authTtlSeconds: AUTH_TTL_SECONDS,
    env: { GATEHOUSE_CACHE_TTL_SECONDS: String(LAMBDA_TTL_SECONDS), GATEHOUSE_LOG_LEVEL: 'error' },
    log: () => {},
  });
  const boot = bearer(stack.bootstrapToken!);
  for (const org of ['acme', 'globex']) expect((await call('POST', '/orgs', boot, JSON.stringify({ id: org, name: org }))).status).toBe(201);
  expect([200, 201]).toContain((await call('PUT', '/orgs/acme/members/alice', boot, JSON.stringify({ roles: ['org-admin'] }))).status);
  expect([200, 201]).toContain((await call('PUT', '/orgs/acme/members/bob', boot, JSON.stringify({ roles: ['org-viewer'] }))).status);
  expect([200, 201]).toContain((await call('PUT', '/orgs/globex/members/bob', boot, JSON.stringify({ roles: ['org-admin'] }))).status);
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

describe('a cached authorizer answer on another route', () => {
  // Routes of every kind: admin (any signed-in caller, the function re-checks), demo
  // (any signed-in caller for GET /demo/{proxy+}; demo:write in the org for /demo/orgs/{orgId}/…).
  const probes: [string, string][] = [
    ['GET', '/me'],
    ['GET', '/orgs/acme'],
    ['GET', '/orgs/globex/members'],
    ['GET', '/tokens'],
    ['GET', '/demo/anything'],
    ['GET', '/demo/public/x'],
    ['GET', '/demo/orgs/acme/x'],
    ['POST', '/demo/orgs/acme/x'],
    ['DELETE', '/demo/orgs/globex/x'],
    ['GET', '/demo/orgs/initech/x'],
  ];
  const primers = probes.filter(([m, p]) => ['GET /me', 'GET /demo/anything', 'POST /demo/orgs/acme/x', 'DELETE /demo/orgs/globex/x'].includes(`${m} ${p}`));

  it('is never more permissive than a fresh decision, and differs only where IAM cannot express the grant', async () => {
    const differences: string[] = [];
    for (const user of ['alice', 'bob', 'carol']) {
      // Fresh: every probe with a credential the gateway has never seen.
      const fresh = new Map<string, GatewayAnswer>();
      for (const [m, p] of probes) fresh.set(`${m} ${p}`, await call(m, p, bearer(await jwtFor(user))));
      for (const [pm, pp] of primers) {
        for (const [m, p] of probes) {
          const credential = bearer(await jwtFor(user));
          await call(pm, pp, credential); // caches this principal's answer (keyed by the Authorization header only)
          const cached = await call(m, p, credential);
          const f = fresh.get(`${m} ${p}`)!;
          const where = `${user}: ${pm} ${pp} then ${m} ${p}`;
          // Never more permissive: what the gateway refused fresh it refuses from the cache.
          if (f.by === 'gateway') expect({ where, ...cached }).toEqual({ where, ...f });
          if (cached.status !== f.status || cached.by !== f.by) {
            // The only tolerated difference: a gateway 403 where a fresh decision let the request through.
            expect({ where, status: cached.status, by: cached.by }).toEqual({ where, status: 403, by: 'gateway' });
            differences.push(`${where}: fresh ${f.status}, cached ${cached.status}`);
          }
        }
      }
    }
    // A route table with a wide route over a narrower one the principal may not use
    // (the first seed had GET /demo/{proxy+} over ANY /demo/orgs/{orgId}/{proxy+}) cannot
    // be listed in IAM without opening the narrower one, so the cached Allow leaves it out
    // (fail closed). With disjoint routes (local/seed-routes.ts) every answer must match.
    const routes = (await call('GET', '/policies/routes', bearer(stack.bootstrapToken!))).body as { routes: { route: string }[] };
    if (routes.routes.some((r) => r.route === 'GET /demo/{proxy+}')) {
      for (const d of differences) expect(d).toMatch(/ then GET \/demo\/(anything|public\/x): fresh 200, cached 403$/);
    } else {
      expect(differences).toEqual([]);
    }
  }, 120_000);

  it('for a site-wide principal (a site token) is exactly the fresh decision', async () => {
    // A new site token (no scopes) for every fresh decision and every primer: nothing cached yet.
    const siteToken = async () => {
      const created = await call('POST', '/site/tokens', bearer(stack.bootstrapToken!), JSON.stringify({ name: 'probe' }));
      expect(created.status).toBe(201);
      return bearer((created.body as { token: string }).token);
    };
    const fresh = new Map<string, number>();
    for (const [m, p] of probes) fresh.set(`${m} ${p}`, (await call(m, p, await siteToken())).status);
    for (const [pm, pp] of primers) {
      const credential = await siteToken();
      await call(pm, pp, credential);
      for (const [m, p] of probes) expect({ route: `${pm} ${pp} then ${m} ${p}`, status: (await call(m, p, credential)).status }).toEqual({ route: `${pm} ${pp} then ${m} ${p}`, status: fresh.get(`${m} ${p}`) });
    }
  }, 60_000);
});

describe('revocation and role changes through the caches', () => {
  it('a revoked token is still served from the gateway cache within its TTL and refused (401) once the TTLs pass', async () => {
    const alice = bearer(await jwtFor('alice'));
    const created = await call('POST', '/tokens', alice, JSON.stringify({ name: 'ci' }));
    expect(created.status).toBe(201);
    const { id, token } = created.body as { id: string; token: string };
    const demo = await call('GET', '/demo/orgs/acme/hello', bearer(token));
    expect(demo).toMatchObject({ status: 200, by: 'integration', body: { context: { principalId: 'alice', kind: 'token', tokenId: id } } });
    expect((await call('DELETE', `/tokens/${id}`, alice)).status).toBe(204);
    // API Gateway semantics: the cached Allow still answers for this identity source...
    expect((await call('POST', '/demo/orgs/acme/hello', bearer(token))).status).toBe(200);
    // ...until the gateway TTL and the in-Lambda principal cache have both passed.
    await sleep((AUTH_TTL_SECONDS + LAMBDA_TTL_SECONDS) * 1000 + 300);
    expect(await call('GET', '/demo/orgs/acme/hello', bearer(token))).toMatchObject({ status: 401, by: 'gateway' });
    expect(await call('GET', '/me', bearer(token))).toMatchObject({ status: 401, by: 'gateway' });
  });

  it('a role granted or taken away applies, both ways, once the TTLs pass', async () => {
    const boot = bearer(stack.bootstrapToken!);
    const dave = bearer(await jwtFor('dave'));
    expect((await call('POST', '/demo/orgs/acme/x', dave)).status).toBe(403);
    expect([200, 201]).toContain((await call('PUT', '/orgs/acme/members/dave', boot, JSON.stringify({ roles: ['org-admin'] }))).status);
    await sleep((AUTH_TTL_SECONDS + LAMBDA_TTL_SECONDS) * 1000 + 300);
    expect((await call('POST', '/demo/orgs/acme/x', dave)).status).toBe(200);
    expect((await call('GET', '/demo/orgs/globex/x', dave)).status).toBe(403);
    expect((await call('DELETE', '/orgs/acme/members/dave', boot)).status).toBe(204);
    await sleep((AUTH_TTL_SECONDS + LAMBDA_TTL_SECONDS) * 1000 + 300);
    expect(await call('POST', '/demo/orgs/acme/x', dave)).toMatchObject({ status: 403, by: 'gateway' });
    // Still signed in: the admin API and the public demo route answer.
    expect((await call('GET', '/me', dave)).status).toBe(200);
  });
});

describe("the gateway's own answers", () => {
  it('401 without, with a malformed or with an unknown credential; the integration never runs', async () => {
    expect(await call('GET', '/demo/x')).toMatchObject({ status: 401, by: 'gateway', body: { message: 'Unauthorized' } });
    expect(await call('GET', '/demo/x', 'Basic YWxpY2U6cHc=')).toMatchObject({ status: 401, by: 'gateway' });
    expect(await call('GET', '/demo/x', 'Bearer')).toMatchObject({ status: 401, by: 'gateway' });
    expect(await call('GET', '/demo/x', bearer(generateToken().token))).toMatchObject({ status: 401, by: 'gateway' });
    expect(await call('GET', '/demo/x', bearer('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'))).toMatchObject({ status: 401, by: 'gateway' });
  });

  it('404 for unknown paths and methods, before any authorizer call', async () => {
    expect(await call('GET', '/nowhere')).toMatchObject({ status: 404, body: { message: 'Not Found' } });
    expect(await call('PATCH', '/me', bearer(stack.bootstrapToken!))).toMatchObject({ status: 404 });
    expect(await call('GET', '/', bearer(stack.bootstrapToken!))).toMatchObject({ status: 404 });
  });

  it('the integration gets the real context', async () => {
    const demo = await call('PUT', '/demo/orgs/acme/a/b?x=1', bearer(await jwtFor('alice')), '{"a":1}');
    expect(demo).toMatchObject({ status: 200, body: { method: 'PUT', path: '/demo/orgs/acme/a/b', context: { principalId: 'alice', userId: 'alice', kind: 'user', email: 'alice@example.com', orgIds: 'acme' } } });
  });

  it('a body over the limit is 413, and the gateway keeps answering afterwards', async () => {
    const boot = bearer(stack.bootstrapToken!);
    const big = await call('POST', '/orgs', boot, JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }));
    expect(big).toMatchObject({ status: 413, by: 'gateway' });
    // The connection that carried the refused body must not be reused half-read: every
    // next request (whichever pooled connection it takes) answers promptly.
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${stack.url}/demo/public/after-413-${i}`, { headers: { authorization: boot }, signal: AbortSignal.timeout(2000) });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
  });

  // Last: it stops DynamoDB Local under the running stack.
  it('500 with no detail when the authorizer fails (the store is gone); a cached answer still serves within its TTL', async () => {
    const boot = bearer(stack.bootstrapToken!);
    expect((await call('GET', '/demo/public/before', boot)).status).toBe(200); // cached at the gateway
    const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout.split('\n');
    const java = ps.filter((l) => l.includes('DynamoDBLocal.jar') && new RegExp(`-port ${stack.dynamoPort}(\\s|$)`).test(l));
    expect(java).toHaveLength(1);
    process.kill(Number(java[0]!.trim().split(/\s+/)[0]), 'SIGKILL'); // the stack's own child
    await sleep(300);
    const failed = await call('GET', '/demo/x', bearer(generateToken().token));
    expect(failed).toEqual({ status: 500, by: 'gateway', body: { message: 'Internal Server Error' } });
    expect((await call('GET', '/demo/x', bearer(await jwtFor('erin')))).status).toBe(500);
    // The demo upstream needs no store: the cached Allow (API Gateway never re-asks within the TTL) still answers.
    expect((await call('GET', '/demo/public/after', boot)).status).toBe(200);
  });
});

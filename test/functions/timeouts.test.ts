import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../core/errors';
import { TimeBudgetedClient } from '../../core/store/dynamo/index';
import { buildHandlers } from '../../functions/apps';
import { createRuntime, STORE_TIME_BUDGET, type Runtime } from '../../functions/runtime';
import { userContext, httpEvent } from '../support/events';
import { makeIssuer } from '../support/jwt';
import { TestClock, testRuntime } from '../support/runtime';

/**
 * DESIGN §8, time budget: a DynamoDB or key-set endpoint that stalls fails closed within
 * 2 s, never a hung invocation. The store here is a real listener on loopback, reached by
 * the production client (built by `createRuntime` from the environment, as in Lambda):
 * one accepts connections and never answers, one answers only after 5 s, one sends its
 * headers and then never finishes the body.
 *
 * No wall-clock claim is made: each call is raced against a 4 s guard timer, a liveness
 * bound twice the budget, and must settle first, failed closed, with its reason code.
 */
const GUARD_MS = 4000;
const PENDING = Symbol('still pending');

/** What `p` settled with, or PENDING when the guard timer fired first. */
async function settled<T>(p: Promise<T>): Promise<{ value: T } | { error: unknown } | typeof PENDING> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<typeof PENDING>((resolve) => {
    timer = setTimeout(() => resolve(PENDING), GUARD_MS);
  });
  try {
    return await Promise.race([p.then((value) => ({ value }), (error: unknown) => ({ error })), guard]);
  } finally {
    clearTimeout(timer);
  }
}

interface Listener {
  url: string;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** Listens on a loopback port; closing destroys every connection still open. */
async function listen(server: TcpServer | HttpServer): Promise<Listener> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  server.on('connection', (s: Socket) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Accepts every connection and never writes a byte. */
const silent = () => listen(createTcpServer(() => {}));

/** Answers every request, but only after 5 s (timers cleared on close). */
function slow(): Promise<Listener> {
  const timers = new Set<NodeJS.Timeout>();
  const server = createHttpServer((req, res) => {
    req.resume();
    const t = setTimeout(() => {
      timers.delete(t);
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{}');
    }, 5000);
    timers.add(t);
  });
  server.on('close', () => timers.forEach(clearTimeout));
  return listen(server);
}

/** Sends a 200 status and headers at once, then a first byte of body, then nothing. */
const trickle = () =>
  listen(
    createHttpServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'content-length': '100' });
      res.write('{');
    }),
  );

const API = 'arn:aws:execute-api:us-east-1:123456789012:api123/prod';
const arn = (method: string, path: string) => `${API}/${method}${path}`;

/** The SDK's own environment, as Lambda sets it, pointed at `endpoint`; restored afterwards. */
function awsEnv(endpoint: string): () => void {
  const saved: Record<string, string | undefined> = {};
  const set = { AWS_ENDPOINT_URL_DYNAMODB: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_SESSION_TOKEN: undefined };
  for (const [k, v] of Object.entries(set)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

type Outcome = { value: unknown } | { error: unknown } | typeof PENDING;

/** Every handler of the deployment, each given a request that needs the store. */
async function everyHandler(rt: Runtime, jwt: string): Promise<Record<string, Outcome>> {
  const h = buildHandlers(rt);
  const bearer = `Bearer ${jwt}`;
  const calls: Record<string, () => Promise<unknown>> = {
    'rest-token': () => h.rest({ type: 'TOKEN', authorizationToken: bearer, methodArn: arn('GET', '/orgs/acme/projects') }),
    'rest-request': () => h.rest({ type: 'REQUEST', methodArn: arn('GET', '/orgs/acme/projects'), headers: { Authorization: bearer } }),
    'http-simple': () => h.http({ version: '2.0', type: 'REQUEST', routeArn: arn('GET', '/orgs/acme/projects'), headers: { authorization: bearer }, requestContext: { http: { method: 'GET', path: '/orgs/acme/projects' } } }),
    'http-iam': () => h.httpIam({ version: '2.0', type: 'REQUEST', routeArn: arn('GET', '/orgs/acme/projects'), headers: { authorization: bearer }, requestContext: { http: { method: 'GET', path: '/orgs/acme/projects' } } }),
    websocket: () => h.websocket({ type: 'REQUEST', methodArn: `${API}/$connect`, headers: { Authorization: bearer }, requestContext: { routeKey: '$connect', eventType: 'CONNECT' } }),
    tokens: () => h.tokens(httpEvent('GET', '/tokens', { context: userContext('alice') })),
    invitations: () => h.invitations(httpEvent('GET', '/invitations', { context: userContext('alice', 'alice@example.com') })),
    admin: () => h.admin(httpEvent('GET', '/me', { context: userContext('alice') })),
  };
  // All at once: the guard is a liveness bound per call, not a measurement.
  const entries = await Promise.all(Object.entries(calls).map(async ([name, call]) => [name, await settled(call())] as const));
  return Object.fromEntries(entries);
}

/** Asserts each handler failed closed, in its flavour's way. */
function expectFailedClosed(outcomes: Record<string, Outcome>) {
  const pending = Object.entries(outcomes).filter(([, o]) => o === PENDING).map(([name]) => name);
  expect(pending, `still pending after the ${GUARD_MS} ms guard`).toEqual([]);
  for (const [name, outcome] of Object.entries(outcomes)) {
    if (outcome === PENDING) continue;
    switch (name) {
      case 'rest-token':
      case 'rest-request':
      case 'http-iam':
      case 'websocket':
        expect('error' in outcome && (outcome.error as Error).message, name).toBe('Authorizer failure');
        break;
      case 'http-simple':
        expect(outcome, name).toEqual({ value: { isAuthorized: false } });
        break;
      default: {
        const res = (outcome as { value: { statusCode: number; body: string } }).value;
        expect(res.statusCode, name).toBe(503);
        expect(JSON.parse(res.body), name).toEqual({ error: { code: 'unavailable', message: 'service unavailable, try again' } });
      }
    }
  }
}

describe('the time budget of a DynamoDB call', () => {
  const config = (url: string) => ({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const get = (client: TimeBudgetedClient) => client.send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'a' }, sk: { S: 'b' } } }));

  it('production: at most two attempts, each bounded, inside one deadline that is under 2 s', () => {
    const b = STORE_TIME_BUDGET;
    expect(b.maxAttempts).toBeLessThanOrEqual(2);
    expect(b.connectMs).toBeLessThanOrEqual(b.attemptMs);
    expect(b.maxAttempts * b.attemptMs).toBeLessThan(2000);
    expect(b.callMs).toBeLessThan(2000);
  });

  it('the per-call deadline alone ends a stalled call (injected budget: attempts unbounded)', async () => {
    const listener = await silent();
    const client = new TimeBudgetedClient(config(listener.url), { maxAttempts: 2, connectMs: 60_000, attemptMs: 60_000, callMs: 200 });
    try {
      const outcome = await settled(get(client));
      expect(outcome).not.toBe(PENDING);
      const error = (outcome as { error: unknown }).error;
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'store-timeout', status: 503 });
      expect(listener.connections()).toBe(1);
    } finally {
      client.destroy();
      await listener.close();
    }
  });

  it('the per-attempt timeouts alone end a stalled call, each retry bounded too (injected budget: no deadline)', async () => {
    const listener = await silent();
    const client = new TimeBudgetedClient(config(listener.url), { maxAttempts: 2, connectMs: 200, attemptMs: 200, callMs: 60_000 });
    try {
      const outcome = await settled(get(client));
      expect(outcome).not.toBe(PENDING);
      expect((outcome as { error: unknown }).error).toMatchObject({ code: 'store-timeout' });
      // Both attempts were made, and both timed out.
      expect(listener.connections()).toBe(2);
    } finally {
      client.destroy();
      await listener.close();
    }
  });

  it('a refused connection is not a timeout: store-unavailable, as before', async () => {
    const listener = await silent();
    const url = listener.url;
    await listener.close();
    const client = new TimeBudgetedClient(config(url), STORE_TIME_BUDGET);
    try {
      const outcome = await settled(get(client));
      expect(outcome).not.toBe(PENDING);
      expect(outcome).toHaveProperty('error');
      expect((outcome as { error: { code?: string } }).error.code).not.toBe('store-timeout');
    } finally {
      client.destroy();
    }
  });
});

describe('a stalled DynamoDB fails closed within the time budget, on every handler', () => {
  const stalls = { 'never answers': silent, 'answers after 5 s': slow, 'stalls mid-body': trickle } as const;

  for (const [kind, start] of Object.entries(stalls)) {
    describe(kind, () => {
      let listener: Listener;
      let restore: () => void;
      let rt: Runtime;
      let logs: string[];
      let jwt: string;

      beforeAll(async () => {
        listener = await start();
        restore = awsEnv(listener.url);
        const idp = await makeIssuer();
        const clock = new TestClock();
        logs = [];
        // No client override: the client is the one Lambda builds.
        rt = createRuntime({ GATEHOUSE_TABLE: 'gatehouse', GATEHOUSE_ISSUERS: JSON.stringify([idp.config]) }, { now: clock.now, logSink: (l) => logs.push(l) });
        jwt = await idp.sign('alice', clock.seconds);
      });
      afterAll(async () => {
        restore?.();
        rt?.store.db.client.destroy();
        await listener?.close();
      });

      it('every handler settles before the guard, failed closed, logged as store-timeout', async () => {
        expectFailedClosed(await everyHandler(rt, jwt));
        const lines = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
        // Each authorizer flavour logs its decision as an error with the reason code.
        const decisions = lines.filter((l) => l.message === 'authorizer.decision');
        expect(decisions.map((d) => d.flavour).sort()).toEqual(['http', 'http', 'rest-request', 'rest-token', 'websocket']);
        for (const d of decisions) expect(d, JSON.stringify(d)).toMatchObject({ level: 'ERROR', effect: 'error', reason: 'store-timeout' });
        // Each admin function logs its failure with the reason code; the answer carries none.
        for (const fn of ['tokens', 'invitations', 'admin']) {
          expect(lines.find((l) => l.message === `${fn}.failed`), fn).toMatchObject({ level: 'ERROR', reason: 'store-timeout' });
        }
        for (const l of logs) expect(l).not.toContain(jwt.split('.')[2]!);
      });
    });
  }
});

describe('a stalled key set fails closed within the time budget', () => {
  for (const [kind, start] of Object.entries({ 'never answers': silent, 'answers after 5 s': slow, 'stalls mid-body': trickle })) {
    it(`JWKS endpoint that ${kind}: every authorizer flavour fails closed, logged as jwks-timeout`, async () => {
      const listener = await start();
      try {
        const idp = await makeIssuer();
        const remote = { issuer: idp.issuer, audience: 'api', jwksUri: `${listener.url}/jwks`, algorithms: ['RS256'] };
        // A working store (DynamoDB Local); only the key set stalls. The production fetch and timeout.
        const rt = await testRuntime({ env: { GATEHOUSE_ISSUERS: JSON.stringify([remote]) } });
        const h = buildHandlers(rt);
        const bearer = `Bearer ${await idp.sign('alice', rt.clock.seconds)}`;
        const outcomes = await Promise.all([
          settled(h.rest({ type: 'TOKEN', authorizationToken: bearer, methodArn: arn('GET', '/orgs/acme/projects') })),
          settled(h.http({ version: '2.0', type: 'REQUEST', routeArn: arn('GET', '/x'), headers: { authorization: bearer }, requestContext: { http: { method: 'GET', path: '/x' } } })),
          settled(h.websocket({ type: 'REQUEST', methodArn: `${API}/$connect`, headers: { Authorization: bearer }, requestContext: { routeKey: '$connect', eventType: 'CONNECT' } })),
        ]);
        expect(outcomes.map((o) => (o === PENDING ? 'pending' : 'error' in o ? (o.error as Error).message : o.value))).toEqual([
          'Authorizer failure',
          { isAuthorized: false },
          'Authorizer failure',
        ]);
        const failures = rt.logs.map((l) => JSON.parse(l)).filter((l) => l.message === 'authorizer.fail-closed');
        expect(failures.length).toBeGreaterThan(0);
        for (const f of failures) expect(f.reason).toBe('jwks-timeout');
      } finally {
        await listener.close();
      }
    });
  }
});

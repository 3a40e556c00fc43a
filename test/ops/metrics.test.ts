import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { BoundedValues, DENY_CLASS_NAMES, denyClass, FLAVOURS, OUTCOMES, UNAUTHORIZED_CLASS_NAMES, unauthorizedClass } from '../../core/metrics/classes';
import { MetricSet, dimensionSets } from '../../core/metrics/emf';
import { METRIC_NAMES, MetricsRecorder } from '../../core/metrics/gatehouse';
import { buildHandlers } from '../../functions/apps';
import { lambda, runInvocation } from '../../functions/lambda';
import { arn, PURE_ROUTES } from '../authorizer/fixtures';
import { emfProblems, emfTotals } from '../support/emf';
import { makeIssuer } from '../support/jwt';
import { testRuntime } from '../support/runtime';

const FN = 'gatehouse-test-Authorizer';
const DOWN = 'https://keys-down.test/';

/** Makes every DynamoDB call of `client` fail the way throttling does, until the returned function is called. */
function throttle(client: DynamoDBClient) {
  client.middlewareStack.add(
    () => async () => {
      throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    },
    { step: 'initialize', name: 'throttle', priority: 'low' },
  );
  return () => client.middlewareStack.remove('throttle');
}

async function scripted() {
  const idp = await makeIssuer();
  const down = await makeIssuer({ issuer: DOWN });
  // An issuer whose key set cannot be fetched: every fetch fails like a refused connection.
  const refused: typeof fetch = async () => {
    throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
  };
  const rt = await testRuntime({
    env: {
      GATEHOUSE_ISSUERS: JSON.stringify([idp.config, { issuer: DOWN, audience: 'api', userIdPrefix: 'down|', jwksUri: `${DOWN}jwks.json`, algorithms: ['RS256'] }]),
      GATEHOUSE_LOG_LEVEL: 'info',
      AWS_LAMBDA_FUNCTION_NAME: FN,
    },
    fetch: refused,
  });
  const now = rt.clock.seconds;
  // Without request-dependent conditions, so a repeated request is answered from memory.
  await rt.store.policy.putRoutes(PURE_ROUTES, now);
  await rt.store.users.putMembership('acme', 'alice', ['org-viewer'], now);
  await rt.store.users.putMembership('acme', 'bob', ['org-viewer'], now);
  const handlers = buildHandlers(rt);
  const rest = lambda(rt, 'rest', handlers.rest);
  const http = lambda(rt, 'http', handlers.http); // simple responses (the default)
  const ws = lambda(rt, 'websocket', handlers.websocket);
  const alice = await idp.sign('alice', now);
  const token = (credential: string, method: string, path: string) => ({ type: 'TOKEN' as const, authorizationToken: `Bearer ${credential}`, methodArn: arn(method, path) });
  let n = 0;
  const ctx = () => ({ awsRequestId: `lambda-${++n}` });

  // The script: what each call must answer, and what the metrics must then say.
  const from = rt.logs.length;
  expect((await rest(token(alice, 'GET', '/orgs/acme/projects'), ctx())).policyDocument.Statement[0]!.Effect).toBe('Allow');
  expect((await rest(token(alice, 'GET', '/orgs/acme/projects'), ctx())).policyDocument.Statement[0]!.Effect).toBe('Allow'); // repeated
  expect((await rest(token(alice, 'DELETE', '/orgs/acme/projects/p1'), ctx())).policyDocument.Statement[0]!.Effect).toBe('Deny');
  await expect(rest(token('not-a-jwt', 'GET', '/orgs/acme/projects'), ctx())).rejects.toThrow(/^Unauthorized$/);
  // HTTP simple answers say no alike for a 401 and a Deny: the decision line tells them apart.
  expect(await http({ routeArn: arn('GET', '/orgs/acme/projects'), headers: { authorization: 'Bearer gat_short' }, requestContext: { requestId: 'apigw-1' } } as never, ctx())).toEqual({ isAuthorized: false });
  expect(await http({ routeArn: arn('GET', '/orgs/acme/billing'), headers: { authorization: `Bearer ${alice}` }, requestContext: { requestId: 'apigw-2' } } as never, ctx())).toMatchObject({ isAuthorized: false });
  expect((await ws({ type: 'REQUEST', methodArn: arn('GET', '/$connect'), headers: { Authorization: `Bearer ${alice}` }, requestContext: { requestId: 'apigw-3', routeKey: '$connect' } } as never, ctx())).policyDocument.Statement[0]!.Effect).toBe('Allow');
  // The store throttles a cold principal: fail closed.
  const stop = throttle(rt.store.db.client);
  try {
    await expect(rest(token(await idp.sign('bob', now), 'GET', '/orgs/acme/projects'), ctx())).rejects.toThrow(/^Authorizer failure$/);
  } finally {
    stop();
  }
  // An issuer's key set is unreachable: fail closed.
  await expect(rest(token(await down.sign('carol', now), 'GET', '/orgs/acme/projects'), ctx())).rejects.toThrow(/^Authorizer failure$/);

  const lines = rt.logs.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>);
  const docs = lines.filter((l) => '_aws' in l);
  return { rt, lines, docs, invocations: n, remoteFetches: rt.jwt.remote(DOWN)!.fetches };
}

describe('metrics (CloudWatch embedded metric format) through the real handlers', () => {
  let s: Awaited<ReturnType<typeof scripted>>;
  beforeAll(async () => {
    s = await scripted();
  });

  it('every metrics line is a valid EMF document in the Gatehouse namespace, one per invocation, written at the end of it', () => {
    expect(s.docs.length).toBeGreaterThan(0);
    for (const doc of s.docs) {
      expect(emfProblems(doc), JSON.stringify(doc)).toEqual([]);
      const aws = doc._aws as { Timestamp: number; CloudWatchMetrics: { Namespace: string }[] };
      expect(aws.Timestamp).toBe(s.rt.clock.ms);
      for (const d of aws.CloudWatchMetrics) expect(d.Namespace).toBe('Gatehouse');
      // A metrics line is a log line like the others: Insights finds it by message.
      expect(doc).toMatchObject({ level: 'INFO', message: 'metrics', service: 'gatehouse', FunctionName: FN });
    }
    // Aggregated per invocation, written in one flush at its end: the invocation's trailing
    // lines. EMF carries one value per dimension in a document, so the flush holds one
    // document for the decision metrics and, at most once a minute, one per cache.
    const ids = s.lines.map((l) => l.function_request_id);
    for (let i = 1; i <= s.invocations; i++) {
      const own = s.lines.filter((l) => l.function_request_id === `lambda-${i}`);
      const first = own.findIndex((l) => '_aws' in l);
      expect(first, `invocation ${i}`).toBeGreaterThanOrEqual(0);
      expect(own.slice(first).every((l) => '_aws' in l), `invocation ${i}: metrics last, together`).toBe(true);
      const docs = own.slice(first);
      // Decisions ride in the first document; each further one is another cache's.
      expect(docs.filter((d) => 'Decisions' in d).length, `invocation ${i}: decisions in one document`).toBeLessThanOrEqual(1);
      expect(new Set(docs.map((d) => d.Cache ?? '')).size, `invocation ${i}: one document per cache`).toBe(docs.length);
    }
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
  });

  it('counts decisions by flavour and outcome, 401s and Denies by reason class, fail-closed failures and key-set failures', () => {
    const t = emfTotals(s.docs);
    const get = (key: string) => t.get(key) ?? 0;
    const f = `FunctionName=${FN}`;
    expect(get(`Decisions{${f}}`)).toBe(s.invocations);
    expect(get(`Decisions{${f},Outcome=allow}`)).toBe(3);
    expect(get(`Decisions{${f},Outcome=deny}`)).toBe(2);
    expect(get(`Decisions{${f},Outcome=unauthorized}`)).toBe(2);
    expect(get(`Decisions{${f},Outcome=error}`)).toBe(2);
    expect(get(`Decisions{${f},Flavour=rest-token,Outcome=allow}`)).toBe(2);
    expect(get(`Decisions{${f},Flavour=websocket,Outcome=allow}`)).toBe(1);
    expect(get(`Decisions{${f},Flavour=http,Outcome=unauthorized}`)).toBe(1);
    expect(get(`Decisions{${f},Flavour=http,Outcome=deny}`)).toBe(1);
    expect(get(`Unauthorized{${f}}`)).toBe(2);
    expect(get(`Unauthorized{${f},ReasonClass=malformed}`)).toBe(2);
    expect(get(`Denies{${f}}`)).toBe(2);
    expect(get(`Denies{${f},ReasonClass=no-permission}`)).toBe(1);
    expect(get(`Denies{${f},ReasonClass=condition}`)).toBe(1);
    expect(get(`FailClosed{${f}}`)).toBe(2);
    expect(get(`FailClosed{${f},Reason=store-unavailable}`)).toBe(1);
    expect(get(`FailClosed{${f},Reason=jwks-unreachable}`)).toBe(1);
    expect(get(`KeySetFailures{${f}}`)).toBe(1);
    expect(get(`KeySetFailures{${f},Reason=jwks-unreachable}`)).toBe(1);
    expect(get(`KeySetFetches{${f}}`)).toBe(s.remoteFetches);
    expect(s.remoteFetches).toBeGreaterThan(0);
    expect(get(`DynamoDbThrottles{${f}}`)).toBeGreaterThan(0);
    expect(get(`DynamoDbLatency{${f}}`)).toBeGreaterThan(0);
  });

  it('every metric is a documented one, and dimensions are bounded: no user, token, path or route ever becomes one', () => {
    const allowed: Record<string, (v: string) => boolean> = {
      FunctionName: (v) => v === FN,
      Flavour: (v) => [...FLAVOURS, 'other'].includes(v as never),
      Outcome: (v) => (OUTCOMES as readonly string[]).includes(v),
      ReasonClass: (v) => [...UNAUTHORIZED_CLASS_NAMES, ...DENY_CLASS_NAMES, 'cached'].includes(v as never),
      Reason: (v) => /^[a-z0-9-]{1,48}$/.test(v),
      Cache: (v) => /^[a-z0-9-]{1,48}$/.test(v),
    };
    for (const doc of s.docs) {
      const aws = doc._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] };
      for (const d of aws.CloudWatchMetrics) for (const m of d.Metrics) expect(METRIC_NAMES).toContain(m.Name);
      for (const d of aws.CloudWatchMetrics)
        for (const set of d.Dimensions)
          for (const k of set) {
            expect(Object.keys(allowed), k).toContain(k);
            expect(allowed[k]!(doc[k] as string), `${k}=${String(doc[k])}`).toBe(true);
          }
    }
  });

  it('cache counters from any source with cacheCounters() are published as differences, at most once a minute', async () => {
    const counters = { principals: { hits: 0, misses: 0 } };
    const source = { cacheCounters: () => [{ name: 'principals', ...counters.principals }] };
    s.rt.metrics.watchCaches(source);
    const run = lambda(s.rt, 'rest', async () => ({ policyDocument: { Statement: [{ Effect: 'Allow' }] } }));
    const docsOf = async (fn: () => Promise<unknown>) => {
      const from = s.rt.logs.length;
      await fn();
      return s.rt.logs.slice(from).map((l) => JSON.parse(l)).filter((l) => '_aws' in l);
    };
    s.rt.clock.advance(61);
    counters.principals = { hits: 9, misses: 1 };
    let t = emfTotals(await docsOf(() => run({}, { awsRequestId: 'c1' })));
    expect(t.get(`CacheHits{FunctionName=${FN},Cache=principals}`)).toBe(9);
    expect(t.get(`CacheMisses{FunctionName=${FN},Cache=principals}`)).toBe(1);
    counters.principals = { hits: 12, misses: 1 };
    t = emfTotals(await docsOf(() => run({}, { awsRequestId: 'c2' })));
    expect(t.get(`CacheHits{FunctionName=${FN},Cache=principals}`)).toBeUndefined(); // within the minute
    s.rt.clock.advance(60);
    t = emfTotals(await docsOf(() => run({}, { awsRequestId: 'c3' })));
    expect(t.get(`CacheHits{FunctionName=${FN},Cache=principals}`)).toBe(3);
    expect(t.get(`CacheMisses{FunctionName=${FN},Cache=principals}`)).toBe(0);
  });
});

describe('metrics never change an answer', () => {
  it('a metrics writer or an event listener that throws leaves the Allow, the Deny and the 401 as they were', async () => {
    const idp = await makeIssuer();
    const rt = await testRuntime({ env: { GATEHOUSE_ISSUERS: JSON.stringify([idp.config]) } });
    await rt.store.policy.putRoutes(PURE_ROUTES, rt.clock.seconds);
    await rt.store.users.putMembership('acme', 'alice', ['org-viewer'], rt.clock.seconds);
    const core = buildHandlers(rt).rest;
    const broken = new MetricsRecorder({ functionName: 'f', now: rt.now, write: () => { throw new Error('stdout closed'); } });
    const rest = lambda({ metrics: broken }, 'rest', core);
    const alice = await idp.sign('alice', rt.clock.seconds);
    const ev = (credential: string, method: string, path: string) => ({ type: 'TOKEN' as const, authorizationToken: `Bearer ${credential}`, methodArn: arn(method, path) });
    expect((await rest(ev(alice, 'GET', '/orgs/acme/projects'))).policyDocument.Statement[0]!.Effect).toBe('Allow');
    expect((await rest(ev(alice, 'DELETE', '/orgs/acme/projects/p9'))).policyDocument.Statement[0]!.Effect).toBe('Deny');
    await expect(rest(ev('x.y.z', 'GET', '/orgs/acme/projects'))).rejects.toThrow(/^Unauthorized$/);
    const listen = () => {
      throw new Error('listener bug');
    };
    const answer = await runInvocation({ listen }, () => core(ev(alice, 'GET', '/orgs/acme/projects/p2')));
    expect(answer.policyDocument.Statement[0]!.Effect).toBe('Allow');
  });
});

describe('metric building blocks', () => {
  it("an answer whose decision line names no outcome (a remembered answer's) is counted from the answer; a decision line always wins", () => {
    const recorder = new MetricsRecorder({ functionName: 'f', now: () => 1, write: () => {} });
    const cached = recorder.begin('http');
    cached.observe('debug', 'authorizer.decision', { flavour: 'http', cached: true });
    cached.answered('deny');
    const said = recorder.begin('http');
    said.observe('info', 'authorizer.decision', { flavour: 'http', effect: 'unauthorized', reason: 'jwt-expired' });
    said.answered('deny'); // an HTTP simple "no" says nothing more
    const silent = recorder.begin('rest-token');
    silent.answered('allow');
    const totals = Object.fromEntries(emfTotals([cached, said, silent].flatMap((m) => m.set.documents('Gatehouse', 1))));
    expect(totals).toMatchObject({
      'Decisions{FunctionName=f,Flavour=http,Outcome=deny}': 1,
      'Denies{FunctionName=f,ReasonClass=cached}': 1,
      'Decisions{FunctionName=f,Flavour=http,Outcome=unauthorized}': 1,
      'Unauthorized{FunctionName=f,ReasonClass=expired}': 1,
      'Decisions{FunctionName=f,Flavour=rest-token,Outcome=allow}': 1,
    });
    expect(totals['Decisions{FunctionName=f}']).toBe(3);
  });

  it('reason codes map to a closed set of classes; unknown codes are other', () => {
    expect(['jwt-expired', 'token-expired', 'token-revoked', 'jwt-bad-signature', 'no-credential', 'whatever', 42].map(unauthorizedClass)).toEqual([
      'expired', 'expired', 'revoked', 'bad-signature', 'no-credential', 'other', 'other',
    ]);
    expect(['no-route', 'gate-denied', 'condition-false', 'org-negated', 'site-negated', 'scope-denied', 'alice'].map(denyClass)).toEqual([
      'no-route', 'gate', 'condition', 'negated', 'negated', 'scope', 'other',
    ]);
  });

  it('an open-ended dimension keeps its first values and calls the rest other', () => {
    const b = new BoundedValues(3);
    expect(['a', 'B c', 'a', 'd', 'e', 'a', null].map((v) => b.of(v))).toEqual(['a', 'b-c', 'a', 'd', 'other', 'a', 'other']);
    expect(b.of('x'.repeat(200))).toBe('other');
  });

  it('one document holds each member once: a second value of a dimension or metric goes to another document', () => {
    const set = new MetricSet();
    const sets = dimensionSets([['FunctionName', 'Cache']]);
    set.count('CacheHits', [['FunctionName', 'f'], ['Cache', 'a']], sets, 2);
    set.count('CacheHits', [['FunctionName', 'f'], ['Cache', 'b']], sets, 5);
    set.count('CacheHits', [['FunctionName', 'f'], ['Cache', 'a']], sets, 1);
    const docs = set.documents('Gatehouse', 1);
    expect(docs).toHaveLength(2);
    for (const d of docs) expect(emfProblems(d)).toEqual([]);
    expect(Object.fromEntries(emfTotals(docs))).toEqual({ 'CacheHits{FunctionName=f,Cache=a}': 3, 'CacheHits{FunctionName=f,Cache=b}': 5 });
  });

  it('at most 100 samples per metric (EMF refuses more)', () => {
    const set = new MetricSet();
    const sets = dimensionSets([['FunctionName']]);
    for (let i = 0; i < 150; i++) set.sample('DynamoDbLatency', 'Milliseconds', [['FunctionName', 'f']], sets, i);
    const [doc] = set.documents('Gatehouse', 1);
    expect((doc!.DynamoDbLatency as number[]).length).toBe(100);
    expect(emfProblems(doc)).toEqual([]);
  });
});

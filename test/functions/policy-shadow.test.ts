import { PutItemCommand, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import type { RouteRule } from '../../core/policy/routes';
import { buildHandlers } from '../../functions/apps';
import { world, API } from '../authorizer/fixtures';
import { countRequests } from '../support/count';
import { httpEvent, userContext, type AuthorizerContext } from '../support/events';
import { recordedLines } from '../support/log-scan';

const PROJECT = 'GET /orgs/{orgId}/projects/{projectId}';
const DELETE_PROJECT = 'DELETE /orgs/{orgId}/projects/{projectId}';
/** The live set: alice is an org viewer of acme, bob its admin (test/authorizer/fixtures.ts). */
const LIVE: RouteRule[] = [
  { route: PROJECT, resource: 'project', action: 'read', org: '{orgId}' },
  { route: DELETE_PROJECT, resource: 'project', action: 'delete', org: '{orgId}' },
  { route: 'GET /health', resource: 'health', action: 'read', public: true },
];
/** The candidate: alice loses project reads, nobody deletes, and /status opens to everyone. */
const CANDIDATE: RouteRule[] = [
  { route: PROJECT, resource: 'project', action: 'read', org: '{orgId}', condition: 'principal.id != "alice"' },
  { route: 'GET /health', resource: 'health', action: 'read', public: true },
  { route: 'GET /status', resource: 'status', action: 'read', public: true },
];
const TTL = 30;

type W = Awaited<ReturnType<typeof shadowWorld>>;

async function shadowWorld(routes: RouteRule[] = LIVE) {
  const w = await world({ routes, cacheTtlSeconds: TTL, ttl: false });
  const h = buildHandlers(w.rt);
  const admin = async (method: string, path: string, o: { body?: unknown; ifMatch?: string; ifNoneMatch?: string; ctx?: AuthorizerContext } = {}) => {
    const res = await h.admin(
      httpEvent(method, path, {
        ...(o.body !== undefined ? { body: o.body } : {}),
        context: o.ctx ?? userContext('root'),
        headers: { ...(o.ifMatch !== undefined ? { 'if-match': o.ifMatch } : {}), ...(o.ifNoneMatch !== undefined ? { 'if-none-match': o.ifNoneMatch } : {}) },
      }),
    );
    return { status: res.statusCode, headers: res.headers, body: res.body ? JSON.parse(res.body) : undefined };
  };
  const alice = await w.jwtFor('alice');
  const bob = await w.jwtFor('bob');
  const bobToken = await w.token({ kind: 'personal', ownerId: 'bob' });
  /** A REST REQUEST authorizer call: the whole IAM answer, or how it failed. */
  const ask = async (credential: string | undefined, method: string, path: string): Promise<unknown> => {
    try {
      return await w.rest({ type: 'REQUEST', methodArn: `${API}/${method}${path}`, headers: credential ? { authorization: `Bearer ${credential}` } : {} });
    } catch (err) {
      return (err as Error).message;
    }
  };
  const items = async () => (await w.rt.store.db.client.send(new ScanCommand({ TableName: w.rt.tableName }))).Items!.map((i) => unmarshall(i));
  return { ...w, admin, ask, alice, bob, bobToken, items };
}

/** The scripted traffic: [credential, method, path], with what the candidate makes of each. */
function script(w: W): [string | undefined, string, string][] {
  return [
    [w.alice, 'GET', '/orgs/acme/projects/p1'], // allow -> deny (condition-false)
    [w.alice, 'GET', '/orgs/acme/projects/p1'],
    [w.alice, 'GET', '/orgs/acme/projects/p2'],
    [w.bob, 'DELETE', '/orgs/acme/projects/p1'], // allow -> deny (no-route)
    [w.bob, 'DELETE', '/orgs/acme/projects/p2'],
    [w.bob, 'GET', '/orgs/acme/projects/p1'], // allow, both
    [w.bobToken.credential, 'GET', '/orgs/acme/projects/p3'], // allow, both
    [w.alice, 'GET', '/orgs/globex/projects/p1'], // deny, both
    [undefined, 'GET', '/status'], // 401 -> allow (public)
    [undefined, 'GET', '/health'], // allow, both
    [w.bob, 'GET', '/health'], // allow, both
  ];
}

async function run(w: W, requests: [string | undefined, string, string][]) {
  const out: unknown[] = [];
  for (const [c, m, p] of requests) out.push(await w.ask(c, m, p));
  return out;
}

/** Stores a candidate of `default` compared against its current version. */
async function startShadow(w: W, body: unknown = { routes: CANDIDATE }) {
  const put = await w.admin('PUT', '/policies/sets/default/candidate', { body, ifNoneMatch: '*' });
  expect(put.status, JSON.stringify(put.body)).toBe(201);
  return put;
}

describe('shadow mode: a candidate decides beside the live set and never answers', { timeout: 60_000 }, () => {
  it('sees exactly the differences a scripted set of requests produces, while every live answer stays the live set\'s', async () => {
    const w = await shadowWorld();
    const baseline = await run(w, script(w));
    expect(baseline.filter((a) => a === 'Unauthorized')).toHaveLength(1);

    const live = await w.admin('GET', '/policies/sets/default');
    const put = await startShadow(w);
    expect(put.headers.etag).toBe('"1"');
    expect(put.body).toMatchObject({ candidate: '1', basedOn: live.body.version, routes: CANDIDATE, gate: null, tests: [] });
    expect((await w.admin('GET', '/policies/sets/default/candidate')).body).toMatchObject({ candidate: '1', basedOn: live.body.version, createdBy: 'root' });

    // Containers pick the candidate up within the policy TTL (the version check sees it).
    w.rt.clock.advance(TTL + 1);
    const started = w.rt.clock.seconds;
    const shadowed = await run(w, script(w));
    expect(shadowed).toEqual(baseline);

    // Counts wait in the container until a flush interval has passed, then go with the next invocation.
    expect((await w.admin('GET', '/policies/sets/default/candidate/report')).body).toMatchObject({ compared: 0, differing: 0 });
    w.rt.clock.advance(61);
    await w.ask(w.bob, 'GET', '/health');

    const report = await w.admin('GET', '/policies/sets/default/candidate/report');
    expect(report.status).toBe(200);
    expect(report.body).toEqual({
      set: 'default',
      candidate: '1',
      basedOn: live.body.version,
      liveVersion: live.body.version,
      stale: false,
      compared: 11,
      differing: 6,
      failed: 0,
      unkeyed: 0,
      firstAt: w.rt.clock.seconds,
      lastAt: w.rt.clock.seconds,
      differences: [
        { route: PROJECT, candidateRoute: PROJECT, live: 'allow', candidate: 'deny', count: 3 },
        { route: DELETE_PROJECT, candidateRoute: null, live: 'allow', candidate: 'deny', count: 2 },
        { route: null, candidateRoute: 'GET /status', live: 'unauthorized', candidate: 'allow', count: 1 },
      ],
      examples: [
        { at: started, principalId: 'alice', method: 'GET', path: '/orgs/acme/projects/p1', route: PROJECT, candidateRoute: PROJECT, live: { outcome: 'allow', code: 'allow' }, candidate: { outcome: 'deny', code: 'condition-false' } },
        { at: started, principalId: 'bob', method: 'DELETE', path: '/orgs/acme/projects/p1', route: DELETE_PROJECT, candidateRoute: null, live: { outcome: 'allow', code: 'allow' }, candidate: { outcome: 'deny', code: 'no-route' } },
        { at: started, principalId: 'anonymous', method: 'GET', path: '/status', route: null, candidateRoute: 'GET /status', live: { outcome: 'unauthorized', code: 'no-route' }, candidate: { outcome: 'allow', code: 'public' } },
      ],
      truncated: false,
    });

    // Never a credential, in the report or in any log line.
    const secrets = [w.alice, w.bob, w.bobToken.credential, w.bobToken.record.secretHash];
    const shadowItems = (await w.items()).filter((i) => /^(SHADOW#|CANDIDATE)/.test(String(i.sk)));
    expect(shadowItems.map((i) => i.type).sort()).toEqual(['policy-candidate', 'shadow-difference', 'shadow-difference', 'shadow-difference', 'shadow-examples', 'shadow-totals']);
    for (const s of secrets) {
      expect(JSON.stringify(report.body)).not.toContain(s);
      expect(JSON.stringify(shadowItems)).not.toContain(s);
      for (const line of recordedLines) expect(line).not.toContain(s);
    }
    expect(w.rt.logs.some((l) => l.includes('"shadow.flushed"') && l.includes('"compared":11'))).toBe(true);
  });

  it('promote fails with 412 after a concurrent write to the live set, and makes the candidate live when nobody wrote', async () => {
    const w = await shadowWorld();
    const v0 = (await w.admin('GET', '/policies/sets/default')).body.version as string;
    await startShadow(w);

    // Another operator writes the live set meanwhile.
    const other = await w.admin('PUT', '/policies/sets/default', { body: { routes: [...LIVE, { route: 'GET /other', resource: 'other', action: 'read' }] }, ifMatch: `"${v0}"` });
    expect(other.status).toBe(200);
    const v1 = other.body.version as string;

    // The candidate was compared against v0: promoting it would undo the other write unseen.
    const stale = await w.admin('POST', '/policies/sets/default/candidate/promote', { ifMatch: `"${v1}"` });
    expect(stale).toMatchObject({ status: 412, body: { error: { code: 'version-mismatch' } } });
    const old = await w.admin('POST', '/policies/sets/default/candidate/promote', { ifMatch: `"${v0}"` });
    expect(old).toMatchObject({ status: 412, body: { error: { code: 'version-mismatch' } } });
    expect((await w.admin('POST', '/policies/sets/default/candidate/promote')).status).toBe(428);
    expect((await w.admin('GET', '/policies/sets/default')).body.routes).toHaveLength(LIVE.length + 1);
    const report = await w.admin('GET', '/policies/sets/default/candidate/report');
    expect(report.body).toMatchObject({ basedOn: v0, liveVersion: v1, stale: true });

    // A candidate stored again is compared against v1, and promotes.
    const again = await w.admin('PUT', '/policies/sets/default/candidate', { body: { routes: CANDIDATE, tests: [] }, ifMatch: '"1"' });
    expect(again).toMatchObject({ status: 200, headers: { etag: '"2"' }, body: { candidate: '2', basedOn: v1 } });
    const promoted = await w.admin('POST', '/policies/sets/default/candidate/promote', { ifMatch: `"${v1}"` });
    expect(promoted.status, JSON.stringify(promoted.body)).toBe(200);
    const v2 = String(Number(v1) + 1);
    expect(promoted.headers.etag).toBe(`"${v2}"`);
    expect(promoted.body).toMatchObject({ routes: CANDIDATE, version: v2 });
    expect((await w.admin('GET', '/policies/sets/default')).body).toMatchObject({ routes: CANDIDATE, version: v2 });
    expect((await w.admin('GET', '/policies/sets/default/candidate')).status).toBe(404);
    expect((await w.items()).filter((i) => String(i.sk).startsWith('CANDIDATE') || String(i.sk).startsWith('SHADOW#'))).toEqual([]);
    // The authorizer decides with it once its TTL has passed.
    w.rt.clock.advance(TTL + 1);
    expect(await w.ask(undefined, 'GET', '/status')).toMatchObject({ policyDocument: { Statement: [{ Effect: 'Allow' }] } });

    const audit = (await w.items()).filter((i) => i.type === 'audit').map((i) => `${i.action}:${i.outcome}`);
    expect(audit).toEqual(expect.arrayContaining(['policy.candidate.put:allowed', 'policy.candidate.promote:failed', 'policy.candidate.promote:allowed', 'policy.set.put:allowed']));
  });

  it('promote runs the candidate\'s tests like every write: refused with 422 and nothing changed when one fails; a promotion is recorded as such', async () => {
    const w = await shadowWorld();
    const v0 = (await w.admin('GET', '/policies/sets/default')).body.version as string;
    const aliceReads = { name: 'alice reads a project', principal: { kind: 'user', id: 'alice', orgs: { acme: ['org-viewer'] } }, request: { method: 'GET', path: '/orgs/acme/projects/p1' }, expect: 'allow' };
    // The candidate takes project reads from alice, and its own test says she keeps them.
    await startShadow(w, { routes: CANDIDATE, tests: [aliceReads] });
    const refused = await w.admin('POST', '/policies/sets/default/candidate/promote', { ifMatch: `"${v0}"` });
    expect(refused).toMatchObject({ status: 422, body: { error: { code: 'policy-tests-failed', details: { failed: 1, failures: [{ name: 'alice reads a project', actual: { decision: 'deny', code: 'condition-false' } }] } } } });
    expect((await w.admin('GET', '/policies/sets/default')).body).toMatchObject({ routes: LIVE, version: v0 });
    expect((await w.admin('GET', '/policies/sets/default/candidate')).status).toBe(200);

    // With a test that says what the candidate means, it promotes, and the history says how.
    const fixed = await w.admin('PUT', '/policies/sets/default/candidate', { body: { routes: CANDIDATE, tests: [{ ...aliceReads, name: 'alice no longer reads', expect: { decision: 'deny', code: 'condition-false' } }] }, ifMatch: '"1"' });
    expect(fixed.status, JSON.stringify(fixed.body)).toBe(200);
    const promoted = await w.admin('POST', '/policies/sets/default/candidate/promote', { ifMatch: `"${v0}"` });
    expect(promoted.status, JSON.stringify(promoted.body)).toBe(200);
    const history = (await w.admin('GET', '/policies/sets/default/versions')).body.items as { version: string; action: string }[];
    expect(history[0]).toMatchObject({ version: promoted.body.version, action: 'promote' });
  });

  it('discard removes the candidate and its report; authorizers stop comparing within the TTL', async () => {
    const w = await shadowWorld();
    await startShadow(w);
    w.rt.clock.advance(TTL + 1);
    await run(w, script(w));
    w.rt.clock.advance(61);
    await w.ask(w.bob, 'GET', '/health'); // flushes
    expect((await w.admin('GET', '/policies/sets/default/candidate/report')).body.compared).toBe(11);

    expect((await w.admin('DELETE', '/policies/sets/default/candidate')).status).toBe(428);
    expect((await w.admin('DELETE', '/policies/sets/default/candidate', { ifMatch: '"7"' })).status).toBe(412);
    expect((await w.admin('DELETE', '/policies/sets/default/candidate', { ifMatch: '"1"' })).status).toBe(204);
    expect((await w.admin('GET', '/policies/sets/default/candidate')).body).toMatchObject({ error: { code: 'candidate-not-found' } });
    expect((await w.admin('GET', '/policies/sets/default/candidate/report')).status).toBe(404);
    expect((await w.admin('DELETE', '/policies/sets/default/candidate', { ifMatch: '"1"' })).status).toBe(404);

    // What the container counted before it noticed (one request: the one that flushed) may
    // still be written, into items that expire; after the TTL nothing is compared at all.
    w.rt.clock.advance(TTL + 1);
    await run(w, script(w));
    w.rt.clock.advance(61);
    await w.ask(w.bob, 'GET', '/health');
    const left = (await w.items()).filter((i) => String(i.sk).startsWith('CANDIDATE') || String(i.sk).startsWith('SHADOW#'));
    expect(left.every((i) => typeof i.expiresAt === 'number')).toBe(true);
    expect(left.find((i) => i.type === 'shadow-totals')?.compared ?? 0).toBeLessThanOrEqual(1);
    const audit = (await w.items()).filter((i) => i.type === 'audit').map((i) => `${i.action}:${i.outcome}`);
    expect(audit).toEqual(expect.arrayContaining(['policy.candidate.delete:allowed', 'policy.candidate.delete:failed']));
  });

  it('a broken candidate never changes a live answer: a condition that throws, and a stored candidate that does not compile', async () => {
    const w = await shadowWorld();
    const baseline = await run(w, script(w));

    // Validated, but it throws at run time for every principal without groups.
    const throwing: RouteRule[] = LIVE.map((r) => (r.route === PROJECT ? { ...r, condition: 'principal.groups[0] == "admins"' } : r));
    await startShadow(w, { routes: throwing });
    w.rt.clock.advance(TTL + 1);
    expect(await run(w, script(w))).toEqual(baseline);
    w.rt.clock.advance(61);
    await w.ask(w.bob, 'GET', '/health');
    const report = (await w.admin('GET', '/policies/sets/default/candidate/report')).body;
    // The five acme project reads (alice's three, bob's, bob's token's): allowed live, denied by the erroring condition.
    expect(report).toMatchObject({ compared: 11, differing: 5, failed: 0, differences: [{ route: PROJECT, candidateRoute: PROJECT, live: 'allow', candidate: 'deny', count: 5 }] });

    // A candidate 2 whose item is not a route table (written around the API): every shadow
    // decision fails, is counted and logged once per flush; the live set decides as ever.
    const stored = (await w.items()).find((i) => i.sk === 'CANDIDATE')!;
    await w.rt.store.db.client.send(new PutItemCommand({ TableName: w.rt.tableName, Item: marshall({ ...stored, candidate: 2, routes: 'not a table' }) }));
    await w.rt.store.db.client.send(new UpdateItemCommand({ TableName: w.rt.tableName, Key: marshall({ pk: 'POLICYSET#default', sk: 'VERSION' }), UpdateExpression: 'SET candidate = :n, candidateSeq = :n', ExpressionAttributeValues: marshall({ ':n': 2 }) }));
    w.rt.clock.advance(TTL + 1);
    const before = w.rt.logs.length;
    expect(await run(w, script(w))).toEqual(baseline);
    const failures = w.rt.logs.slice(before).filter((l) => l.includes('"shadow.failed"'));
    expect(failures).toHaveLength(1);
    expect(w.rt.logs.slice(before).some((l) => l.includes('"shadow.candidate-broken"'))).toBe(true);
    w.rt.clock.advance(61);
    await w.ask(w.bob, 'GET', '/health');
    const after = (await w.admin('GET', '/policies/sets/default/candidate/report')).body;
    expect(after).toMatchObject({ candidate: '2', compared: 0, differing: 0, failed: 11 });
  });

  it('recording stays bounded under a flood of distinct paths and principals: caps hold, writes per flush are bounded', async () => {
    // 200 public routes live; the candidate has none of them: every request differs, in 200 kinds.
    const many: RouteRule[] = Array.from({ length: 200 }, (_, i) => ({ route: `GET /svc${i}/{proxy+}`, resource: 'svc', action: 'read', public: true }));
    const w = await shadowWorld(many);
    await startShadow(w, { routes: [{ route: 'GET /health', resource: 'health', action: 'read', public: true }] });
    w.rt.clock.advance(TTL + 1);
    const users = await Promise.all(Array.from({ length: 20 }, (_, i) => w.jwtFor(`flood${i}`)));
    const counter = countRequests(w.rt.store.db.client);
    for (let window = 0; window < 6; window++) {
      for (let k = 0; k < 400; k++) await w.ask(k % 2 === 0 ? undefined : users[k % users.length], 'GET', `/svc${(k * 7) % 200}/w${window}/p${k}`);
      w.rt.clock.advance(61);
      counter.reset();
      await w.ask(undefined, 'GET', '/nowhere');
      // One flush: totals, at most 50 kinds, examples; and the request's own policy version check.
      expect(counter.commands().filter((c) => c === 'UpdateItemCommand').length).toBeLessThanOrEqual(52);
      expect(counter.total()).toBeLessThanOrEqual(53);
    }
    counter.stop();
    const report = (await w.admin('GET', '/policies/sets/default/candidate/report')).body;
    expect(report.compared).toBe(6 * 400 + 5);
    expect(report.differing).toBe(6 * 400);
    const broken = report.differences.reduce((n: number, d: { count: number }) => n + d.count, 0);
    expect(broken + report.unkeyed).toBe(report.differing);
    expect(report.unkeyed).toBeGreaterThan(0);
    expect(report.differences.length).toBeLessThanOrEqual(200);
    // The stored sample is capped however many flushes add to it.
    expect(report.examples).toHaveLength(50);
    const shadowItems = (await w.items()).filter((i) => String(i.sk).startsWith('SHADOW#'));
    expect(shadowItems.length).toBeLessThanOrEqual(2 + 200);
    expect(shadowItems.find((i) => i.type === 'shadow-examples')!.examples).toHaveLength(50);
    expect(shadowItems.every((i) => typeof i.expiresAt === 'number')).toBe(true);
  });
});

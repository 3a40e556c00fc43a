import { beforeAll, describe, expect, it } from 'vitest';
import type { HttpApiEvent } from '../../core/http/api';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import { buildHandlers } from '../../functions/apps';
import { adminWorld } from './admin-support';
import { httpEvent, userContext, type AuthorizerContext } from '../support/events';
import { makeIssuer } from '../support/jwt';

/**
 * DESIGN §6, explain: it answers the caller's own requests (with the groups and claims of
 * the credential actually used) and, for policy readers (site-level policy:read),
 * anyone's. For anyone else, a credential that is not theirs gets one and the same
 * refusal whether it is valid, revoked, expired or wrong (no oracle), a gatehouse token
 * presented that way is recorded in its access log, and an explanation never shows rule
 * or expression text the caller could not read through GET /policies/….
 */

const GATE = 'principal.id != "blocked-user"';
const OPS_CONDITION = '"ops" in principal.groups';
const ROUTES = [
  { route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'read', org: '{orgId}' },
  { route: 'GET /orgs/{orgId}/ops/{proxy+}', resource: 'project', action: 'read', org: '{orgId}', condition: OPS_CONDITION },
];

type World = Awaited<ReturnType<typeof adminWorld>>;
let w: World;
let version: string;

/** An explain call as the admin API receives it: the authorizer's context, and the Authorization header the request carried. */
function explainEvent(body: Record<string, unknown>, context: AuthorizerContext, authorization?: string): HttpApiEvent {
  const event = httpEvent('POST', '/authz/explain', { body, context });
  if (authorization !== undefined) event.headers = { ...event.headers, authorization };
  return event;
}

const explain = (body: Record<string, unknown>, context: AuthorizerContext, authorization?: string) => w.call(explainEvent(body, context, authorization));

async function token(fields: { kind: 'personal' | 'org' | 'site'; ownerId?: string; orgId?: string; revokedAt?: number; expiresAt?: number; scopes?: string[] }) {
  const t = generateToken();
  const now = w.rt.clock.seconds;
  await w.rt.store.tokens.createToken({ id: t.id, name: 'x', secretHash: hashSecret(t.secret), createdAt: now - 10, expiresAt: now + 3600, ...fields });
  return t;
}

/** The same token id with a wrong secret (well-formed: right length and checksum). */
const wrongSecret = (id: string) => generateToken(id).token;

beforeAll(async () => {
  w = await adminWorld();
  await w.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: ROUTES }, context: userContext('root') }));
  await w.call(httpEvent('PUT', '/policies/gate', { headers: { 'if-match': '*' }, body: { expression: GATE }, context: userContext('root') }));
  version = (await w.rt.store.loadPolicy()).version;
});

describe('explain is no credential oracle', () => {
  it('a caller without policy:read gets one and the same refusal for any credential not theirs, valid or not', async () => {
    const now = w.rt.clock.seconds;
    const valid = await token({ kind: 'personal', ownerId: 'ada' });
    const revoked = await token({ kind: 'personal', ownerId: 'ada', revokedAt: now - 1 });
    const expired = await token({ kind: 'personal', ownerId: 'ada', expiresAt: now - 1 });
    const org = await token({ kind: 'org', orgId: 'acme' });
    const unknown = generateToken();
    const stranger = await makeIssuer({ issuer: 'https://stranger.test/' });
    const credentials: Record<string, string> = {
      'valid JWT of another user': await w.idp.sign('ada', now),
      'expired JWT of another user': await w.idp.sign('ada', now - 7200),
      'JWT of an unknown issuer': await stranger.sign('ada', now),
      'JWT with a forged signature': (await w.idp.sign('ada', now)).replace(/\.[^.]+$/, '.AAAA'),
      'valid personal token of another user': valid.token,
      'revoked token': revoked.token,
      'expired token': expired.token,
      'token with a wrong secret': wrongSecret(valid.id),
      'org token': org.token,
      'unknown token id': unknown.token,
      'malformed credential': 'junk',
    };
    const answers: Record<string, string> = {};
    for (const [name, credential] of Object.entries(credentials)) {
      const res = await explain({ credential, method: 'GET', path: '/orgs/acme/projects/p1' }, userContext('nobody'));
      answers[name] = JSON.stringify({ status: res.status, body: res.body });
    }
    const distinct = [...new Set(Object.values(answers))];
    expect(distinct, JSON.stringify(answers, null, 1)).toHaveLength(1);
    expect(JSON.parse(distinct[0]!)).toEqual({ status: 403, body: { error: { code: 'explain-others', message: expect.any(String) } } });
    // No log line holds any of the credentials (a JWT's signature, a token's secret).
    for (const credential of Object.values(credentials)) {
      const secretPart = credential.startsWith('gat_') ? credential.slice(21, 53) : credential.split('.')[2] ?? credential;
      for (const l of w.rt.logs) expect(l).not.toContain(secretPart);
    }
    // The same refusal for someone else's user id.
    const byId = await explain({ userId: 'ada', method: 'GET', path: '/orgs/acme/projects/p1' }, userContext('nobody'));
    expect(JSON.stringify({ status: byId.status, body: byId.body })).toBe(distinct[0]);
  });

  it('a gatehouse token presented that way is recorded in its access log (valid, revoked, expired or wrong secret)', async () => {
    const now = w.rt.clock.seconds;
    const valid = await token({ kind: 'personal', ownerId: 'ada' });
    const revoked = await token({ kind: 'personal', ownerId: 'ada', revokedAt: now - 1 });
    const expired = await token({ kind: 'org', orgId: 'acme', expiresAt: now - 1 });
    const cases = [
      [valid.id, valid.token, 'explain-others'],
      [revoked.id, revoked.token, 'token-revoked'],
      [expired.id, expired.token, 'token-expired'],
      [valid.id, wrongSecret(valid.id), 'token-bad-secret'],
    ] as const;
    for (const [, credential] of cases) {
      expect((await explain({ credential, method: 'GET', path: '/orgs/acme/projects/p1' }, userContext('nobody'))).status).toBe(403);
    }
    for (const [id, , reason] of cases) {
      const log = await w.rt.store.tokens.listAccessLog(id, { limit: 50 });
      expect(log.items, `${id} ${reason}`).toContainEqual(expect.objectContaining({ route: 'POST /authz/explain', outcome: 'unauthorized', reason, sourceIp: '203.0.113.7' }));
    }
  });

  it('one\'s own credential is explained, not refused, and one\'s own user id too', async () => {
    const mine = await token({ kind: 'personal', ownerId: 'vic', scopes: ['project:read'] });
    const res = await explain({ credential: mine.token, method: 'GET', path: '/orgs/acme/projects/p1' }, userContext('vic'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ allowed: true, code: 'allow', principalId: 'vic' });
    const jwt = await explain({ credential: await w.idp.sign('vic', w.rt.clock.seconds), method: 'GET', path: '/orgs/acme/projects/p1' }, userContext('vic'));
    expect(jwt.body).toMatchObject({ allowed: true, principalId: 'vic' });
    expect((await explain({ userId: 'vic', method: 'GET', path: '/orgs/acme/projects/p1' }, userContext('vic'))).body).toMatchObject({ allowed: true, principalId: 'vic' });
  });

  it('policy readers still explain anyone\'s credential, with its 401 reason', async () => {
    const revoked = await token({ kind: 'personal', ownerId: 'ada', revokedAt: w.rt.clock.seconds - 1 });
    const res = await explain({ credential: revoked.token, method: 'GET', path: '/orgs/acme/projects/p1' }, userContext('auditor'));
    expect(res.body).toMatchObject({ allowed: false, status: 401, code: 'token-revoked' });
    const ada = await explain({ credential: await w.idp.sign('ada', w.rt.clock.seconds), method: 'GET', path: '/orgs/acme/projects/p1' }, userContext('auditor'));
    expect(ada.body).toMatchObject({ allowed: true, principalId: 'ada' });
  });
});

describe('explaining one\'s own request uses the credential actually used', () => {
  it('a JWT\'s groups decide the condition as they do at the authorizer', async () => {
    const jwt = await w.idp.sign('vic', w.rt.clock.seconds, { groups: ['ops'] });
    // The authorizer allows it (the admin API's route policies are not in this table: the demo API's are).
    const h = buildHandlers(w.rt);
    const live = await h.http({ version: '2.0', type: 'REQUEST', routeArn: 'arn:aws:execute-api:us-east-1:123456789012:api123/prod/GET/orgs/acme/ops/deploy', headers: { authorization: `Bearer ${jwt}` } });
    expect(live).toMatchObject({ isAuthorized: true });
    // So does explain, for the same caller with the same credential, not condition-false.
    const res = await explain({ method: 'GET', path: '/orgs/acme/ops/deploy' }, userContext('vic'), `Bearer ${jwt}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ allowed: true, code: 'allow', principalId: 'vic', expressions: [{ name: 'gate', result: true }, { name: 'condition', result: true }] });
    // Without the group, the same request is condition-false, for both.
    const plain = await w.idp.sign('vic', w.rt.clock.seconds);
    expect(await h.http({ version: '2.0', type: 'REQUEST', routeArn: 'arn:aws:execute-api:us-east-1:123456789012:api123/prod/GET/orgs/acme/ops/deploy', headers: { authorization: `Bearer ${plain}` } })).toMatchObject({ isAuthorized: false });
    expect((await explain({ method: 'GET', path: '/orgs/acme/ops/deploy' }, userContext('vic'), `Bearer ${plain}`)).body).toMatchObject({ allowed: false, code: 'condition-false' });
    // The header was read, never logged.
    for (const l of w.rt.logs) for (const t of [jwt, plain]) expect(l).not.toContain(t.split('.')[2]!);
  });

  it('an Authorization header that is not the caller\'s own (only possible off the gateway) is not used', async () => {
    const ada = await w.idp.sign('ada', w.rt.clock.seconds, { groups: ['ops'] });
    const res = await explain({ method: 'GET', path: '/orgs/acme/ops/deploy' }, userContext('vic'), `Bearer ${ada}`);
    expect(res.body).toMatchObject({ principalId: 'vic', allowed: false, code: 'condition-false' });
  });
});

describe('explanations show no rule or expression text the caller could not read', () => {
  it('a caller without policy:read sees codes and results only; a reader sees the text', async () => {
    const jwt = await w.idp.sign('vic', w.rt.clock.seconds, { groups: ['ops'] });
    // vic cannot read the policies ...
    expect((await w.call(httpEvent('GET', '/policies/routes', { context: userContext('vic') }))).status).toBe(403);
    expect((await w.call(httpEvent('GET', '/policies/gate', { context: userContext('vic') }))).status).toBe(403);
    // ... so explaining her own request shows none of their text.
    for (const path of ['/orgs/acme/ops/deploy', '/orgs/acme/projects/p1', '/orgs/globex/ops/x', '/nowhere']) {
      const res = await explain({ method: 'GET', path }, userContext('vic'), `Bearer ${jwt}`);
      expect(res.status).toBe(200);
      const text = JSON.stringify(res.body);
      for (const secret of [GATE, OPS_CONDITION, 'blocked-user', '{orgId}', '{proxy+}', '{projectId}']) expect(text, `${path} shows ${secret}`).not.toContain(secret);
      expect(res.body).toMatchObject({ route: null, policyVersion: version });
      for (const e of res.body.expressions) expect(Object.keys(e).sort()).toEqual(['name', 'result']);
    }
    // The codes and results stay.
    expect((await explain({ method: 'GET', path: '/orgs/acme/ops/deploy' }, userContext('vic'), `Bearer ${jwt}`)).body).toMatchObject({ allowed: true, code: 'allow', expressions: [{ name: 'gate', result: true }, { name: 'condition', result: true }] });
    expect((await explain({ method: 'GET', path: '/orgs/globex/ops/x' }, userContext('vic'), `Bearer ${jwt}`)).body).toMatchObject({ allowed: false, code: 'not-member' });
    // A policy reader sees the rule and the expressions' text.
    const reader = await explain({ userId: 'vic', method: 'GET', path: '/orgs/acme/ops/deploy' }, userContext('auditor'));
    expect(reader.body).toMatchObject({ route: 'GET /orgs/{orgId}/ops/{proxy+}', expressions: [{ name: 'gate', text: GATE }, { name: 'condition', text: OPS_CONDITION }] });
  });

  it('an expression that fails to evaluate shows no error text to a non-reader', async () => {
    const w2 = await adminWorld();
    const failing = 'principal.claims.a.b.c == 1';
    await w2.call(httpEvent('PUT', '/policies/routes', { headers: { 'if-match': '*' }, body: { routes: [{ route: 'GET /orgs/{orgId}/x', resource: 'project', action: 'read', org: '{orgId}', condition: failing }] }, context: userContext('root') }));
    const res = await w2.call(httpEvent('POST', '/authz/explain', { body: { method: 'GET', path: '/orgs/acme/x' }, context: userContext('vic') }));
    expect(res.body).toMatchObject({ allowed: false, code: 'condition-false' });
    expect(JSON.stringify(res.body)).not.toContain('principal.claims');
  });
});

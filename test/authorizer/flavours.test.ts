import { beforeAll, describe, expect, it } from 'vitest';
import { API, world } from './fixtures';

type World = Awaited<ReturnType<typeof world>>;

function httpEvent(method: string, path: string, headers: Record<string, string>) {
  return {
    version: '2.0',
    type: 'REQUEST',
    routeArn: `${API}/${method}${path}`,
    routeKey: `${method} ${path}`,
    rawPath: `/prod${path}`,
    headers,
    requestContext: { http: { method, path: `/prod${path}`, sourceIp: '198.51.100.7' }, stage: 'prod' },
  };
}

describe('HTTP API (payload 2.0) authorizer', () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  });

  it('simple response: allow with context, deny and 401 as isAuthorized false', async () => {
    const jwt = await w.jwtFor('alice', { email: 'alice@acme.test', email_verified: true });
    const ok = await w.http(httpEvent('GET', '/orgs/acme/projects', { authorization: `Bearer ${jwt}` }));
    expect(ok).toEqual({ isAuthorized: true, context: expect.objectContaining({ principalId: 'alice', kind: 'user', email: 'alice@acme.test' }) });
    const no = await w.http(httpEvent('DELETE', '/orgs/acme/projects/p1', { authorization: `Bearer ${jwt}` }));
    expect(no).toMatchObject({ isAuthorized: false });
    expect(await w.http(httpEvent('GET', '/orgs/acme/projects', {}))).toEqual({ isAuthorized: false });
    // A public route needs no credential (API Gateway only calls us without one when caching is off).
    expect(await w.http(httpEvent('GET', '/health', {}))).toMatchObject({ isAuthorized: true, context: { principalId: 'anonymous', kind: 'anonymous' } });
    expect(await w.http(httpEvent('GET', '/health', { authorization: 'Bearer junk' }))).toEqual({ isAuthorized: false });
    // HTTP APIs join repeated headers with commas: two credentials are refused.
    expect(await w.http(httpEvent('GET', '/health', { authorization: `Bearer ${jwt},Bearer ${jwt}` }))).toEqual({ isAuthorized: false });
  });

  it('IAM mode answers like REST', async () => {
    const jwt = await w.jwtFor('bob');
    const res = (await w.httpIam(httpEvent('DELETE', '/orgs/acme/projects/p1', { authorization: `Bearer ${jwt}` }))) as { policyDocument: { Statement: { Effect: string }[] } };
    expect(res.policyDocument.Statement[0]!.Effect).toBe('Allow');
    await expect(w.httpIam(httpEvent('GET', '/orgs/acme/projects', {}))).rejects.toThrow(/^Unauthorized$/);
  });

  it('a bad routeArn never allows', async () => {
    const jwt = await w.jwtFor('root');
    expect(await w.http({ ...httpEvent('GET', '/health', { authorization: `Bearer ${jwt}` }), routeArn: 'nope' })).toEqual({ isAuthorized: false });
  });
});

describe('WebSocket $connect authorizer', () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  });
  const connect = (headers: Record<string, string>) => ({
    type: 'REQUEST' as const,
    methodArn: `${API}/$connect`,
    headers,
    requestContext: { routeKey: '$connect', eventType: 'CONNECT', identity: { sourceIp: '198.51.100.9' } },
  });

  it('accepts Authorization or a Sec-WebSocket-Protocol entry', async () => {
    const jwt = await w.jwtFor('alice');
    const t = await w.token({ kind: 'personal', ownerId: 'alice' });
    for (const headers of [{ Authorization: `Bearer ${jwt}` }, { 'Sec-WebSocket-Protocol': `chat, ${t.credential}` }, { 'sec-websocket-protocol': `bearer, ${jwt}` }] as Record<string, string>[]) {
      const res = await w.ws(connect(headers));
      expect(res.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow', Resource: [`${API}/$connect`] });
    }
  });

  it('401 without a credential, with two, or with a bad Authorization even if the protocol carries one', async () => {
    const jwt = await w.jwtFor('alice');
    const t = await w.token({ kind: 'personal', ownerId: 'alice' });
    await expect(w.ws(connect({}))).rejects.toThrow(/^Unauthorized$/);
    await expect(w.ws(connect({ 'Sec-WebSocket-Protocol': `${jwt}, ${t.credential}` }))).rejects.toThrow(/^Unauthorized$/);
    await expect(w.ws(connect({ Authorization: 'Basic x', 'Sec-WebSocket-Protocol': t.credential }))).rejects.toThrow(/^Unauthorized$/);
  });
});

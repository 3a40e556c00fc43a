import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { createRestAuthorizer, createHttpAuthorizer } from '../../core/gateway/handlers';
import { createRuntime } from '../../functions/runtime';
import { freePort } from '../../local/dynamodb-local';
import { makeIssuer } from '../support/jwt';
import { TestClock } from '../support/runtime';
import { arn, world } from './fixtures';

/** Makes every DynamoDB call fail the way throttling does. */
function throttle(client: DynamoDBClient) {
  client.middlewareStack.add(
    () => async () => {
      throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    },
    { step: 'initialize', name: 'throttle' },
  );
  return () => client.middlewareStack.remove('throttle');
}

describe('fail closed', () => {
  it('DynamoDB unreachable: REST throws a failure (500), HTTP says no, nothing allows', async () => {
    const idp = await makeIssuer();
    const clock = new TestClock();
    const logs: string[] = [];
    const client = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${await freePort()}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    const rt = createRuntime({ GATEHOUSE_TABLE: 'gatehouse', GATEHOUSE_ISSUERS: JSON.stringify([idp.config]) }, { client, now: clock.now, logSink: (l) => logs.push(l) });
    const deps = rt.gateway;
    const rest = createRestAuthorizer(deps);
    const http = createHttpAuthorizer({ ...deps, mode: 'simple' });
    const jwt = await idp.sign('root', clock.seconds);
    await expect(rest({ type: 'TOKEN', authorizationToken: `Bearer ${jwt}`, methodArn: arn('GET', '/health') })).rejects.toThrow('Authorizer failure');
    expect(await http({ routeArn: arn('GET', '/health'), headers: { authorization: `Bearer ${jwt}` } })).toEqual({ isAuthorized: false });
    const errors = logs.map((l) => JSON.parse(l)).filter((l) => l.level === 'ERROR');
    expect(errors.some((e) => e.reason === 'store-unavailable')).toBe(true);
    for (const l of logs) expect(l).not.toContain(jwt.split('.')[2]!);
  });

  it('throttling after warm caches: cached decisions keep working, cold ones fail closed', async () => {
    const clock = new TestClock();
    const w = await world({ clock });
    const alice = await w.jwtFor('alice');
    expect((await w.rest(w.tokenEvent(alice, 'GET', '/orgs/acme/projects'))).policyDocument.Statement[0]!.Effect).toBe('Allow');
    const stop = throttle(w.rt.store.db.client);
    try {
      // Warm: served from memory within the TTL.
      expect((await w.rest(w.tokenEvent(alice, 'GET', '/orgs/acme/projects'))).policyDocument.Statement[0]!.Effect).toBe('Allow');
      // Cold principal: the store is needed and fails: never an Allow.
      const bob = await w.jwtFor('bob');
      await expect(w.rest(w.tokenEvent(bob, 'GET', '/orgs/acme/projects'))).rejects.toThrow('Authorizer failure');
      const t = await (async () => { stop(); const x = await w.token({ kind: 'site' }); throttle(w.rt.store.db.client); return x; })();
      await expect(w.rest(w.tokenEvent(t.credential, 'GET', '/health'))).rejects.toThrow('Authorizer failure');
      // Past the TTL even alice must be re-read: fails closed.
      clock.advance(31);
      await expect(w.rest(w.tokenEvent(await w.jwtFor('alice'), 'GET', '/orgs/acme/projects'))).rejects.toThrow('Authorizer failure');
    } finally {
      w.rt.store.db.client.middlewareStack.remove('throttle');
    }
  });

  it('garbage events never crash with anything but a controlled answer', async () => {
    const w = await world();
    const junk: unknown[] = [null, undefined, 42, 'x', [], {}, { type: 'TOKEN' }, { type: 'REQUEST', methodArn: 5 }, { type: 'TOKEN', methodArn: arn('GET', '/health'), authorizationToken: {} }];
    for (const e of junk) {
      await expect(w.rest(e as never)).rejects.toThrow(/^(Unauthorized|Authorizer failure)$/);
      const r = await w.http(e as never);
      expect(r).toEqual({ isAuthorized: false });
    }
  });
});

describe('key-source failure at the authorizer', () => {
  it('a JWKS endpoint that is down fails closed (500), never an Allow', async () => {
    const { generateKeyPair, SignJWT } = await import('jose');
    const clock = new TestClock();
    const port = await freePort();
    const issuer = 'https://idp.remote.test/';
    const w = await world({ clock });
    const rt = createRuntime(
      { GATEHOUSE_TABLE: w.rt.tableName, GATEHOUSE_ISSUERS: JSON.stringify([{ issuer, audience: 'api', jwksUri: `http://127.0.0.1:${port}/jwks` }]) },
      { client: w.rt.store.db.client, now: clock.now, logSink: () => {} },
    );
    const rest = createRestAuthorizer(rt.gateway);
    const { privateKey } = await generateKeyPair('RS256');
    const jwt = await new SignJWT({ iss: issuer, aud: 'api', sub: 'root', exp: clock.seconds + 600 }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).sign(privateKey);
    await expect(rest({ type: 'TOKEN', authorizationToken: `Bearer ${jwt}`, methodArn: arn('GET', '/health') })).rejects.toThrow('Authorizer failure');
  });
});

import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createHttpAuthorizer, createRestAuthorizer } from '../../core/gateway/handlers';
import { countRequests } from '../support/count';
import { makeIssuer } from '../support/jwt';
import { testRuntime } from '../support/runtime';
import { API, arn, effect, PURE_ROUTES, world } from './fixtures';

/**
 * A JWT is authenticated before anything else happens: its signature, then its claims.
 * These tests hold that nothing comes of a forged or failing token but the 401: no
 * answer, no cache entry, no read, no log line but the decision, for known and unknown
 * users, in warm and cold containers.
 */

type World = Awaited<ReturnType<typeof world>>;

let seq = 0;
/** A forger: the same issuer and kid, another private key. Its tokens are well-formed and claim anything. */
async function forger() {
  const fake = await makeIssuer();
  return (w: World, sub: string, claims: Record<string, unknown> = {}) => fake.sign(sub, w.rt.clock.seconds, { jti: `f${++seq}`, ...claims });
}

const decisions = (w: World, from = 0) =>
  w.rt.logs
    .slice(from)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.message === 'authorizer.decision');

describe('forged and failing tokens', () => {
  it('a forged token of a known user is refused by every flavour, even where an answer for the user is cached, and again when repeated', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const forge = await forger();
    const path = '/orgs/acme/projects/p1';
    const ev = (jwt: string) => w.tokenEvent(jwt, 'GET', path);
    const httpEv = (jwt: string) => ({ routeArn: arn('GET', path), headers: { authorization: `Bearer ${jwt}` } });
    // alice is known (roles cached) and her allow-list for this API is cached.
    for (let i = 0; i < 2; i++) {
      expect(effect(await w.rest(ev(await w.jwtFor('alice', { jti: `a${++seq}` }))))).toBe('Allow');
      expect(await w.http(httpEv(await w.jwtFor('alice', { jti: `a${++seq}` })))).toMatchObject({ isAuthorized: true });
      expect(effect((await w.httpIam(httpEv(await w.jwtFor('alice', { jti: `a${++seq}` })))) as never)).toBe('Allow');
    }
    expect(w.rt.caches.answers.size).toBeGreaterThan(0);

    const from = w.rt.logs.length;
    for (const claims of [{}, { email: 'alice@acme.test', email_verified: true }]) {
      const forged = await forge(w, 'alice', claims);
      // Twice each: a refused token must not have been cached on the way.
      for (let i = 0; i < 2; i++) {
        await expect(w.rest(ev(forged))).rejects.toThrow(/^Unauthorized$/);
        expect(await w.http(httpEv(forged))).toEqual({ isAuthorized: false });
        await expect(w.httpIam(httpEv(forged))).rejects.toThrow(/^Unauthorized$/);
      }
    }
    // Nothing but the 401s was logged: no allow-list, policy-size or decision line of a forged principal.
    expect(w.rt.logs.slice(from).map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(Array(12).fill('authorizer.decision'));
    const lines = decisions(w, from);
    expect(lines).toHaveLength(12);
    for (const l of lines) expect(l).toMatchObject({ effect: 'unauthorized', reason: 'jwt-bad-signature' });
    expect(lines.some((l) => l.principalId !== undefined)).toBe(false);
  });

  it('a forged token of a known user is refused by WebSocket $connect and authorize() as well', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const forge = await forger();
    const connect = (jwt: string) => ({
      type: 'REQUEST' as const,
      methodArn: `${API}/$connect`,
      headers: { Authorization: `Bearer ${jwt}` },
      requestContext: { routeKey: '$connect', eventType: 'CONNECT', identity: { sourceIp: '198.51.100.9' } },
    });
    expect(effect(await w.ws(connect(await w.jwtFor('alice'))))).toBe('Allow');
    await expect(w.ws(connect(await forge(w, 'alice')))).rejects.toThrow(/^Unauthorized$/);
    const request = { method: 'GET', path: '/orgs/acme/projects/p1', headers: {}, query: {} };
    expect(await w.rt.authorizer.authorize({ ...request, credential: await w.jwtFor('alice') })).toMatchObject({ effect: 'allow' });
    expect(await w.rt.authorizer.authorize({ ...request, credential: await forge(w, 'alice') })).toEqual({ effect: 'unauthorized', code: 'jwt-bad-signature' });
  });

  it('a resolution is cached once the token is verified, never when refused', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const forge = await forger();
    const { principals, caches } = w.rt;
    await principals.resolve(await w.jwtFor('alice'));
    const real = await w.jwtFor('alice', { jti: 'real' });
    const before = caches.resolved.size;
    await principals.resolve(real);
    // A credential resolved once leaves nothing behind; it is kept from its second resolution on (caches.ts),
    // and then the same credential resolves from the cache, the same object.
    expect(caches.resolved.size).toBe(before);
    const second = await principals.resolve(real);
    expect(caches.resolved.size).toBe(before + 1);
    expect(await principals.resolve(real)).toBe(second);
    const size = caches.resolved.size;
    const forged = await forge(w, 'alice');
    for (let i = 0; i < 2; i++) await expect(principals.resolve(forged)).rejects.toMatchObject({ code: 'jwt-bad-signature' });
    expect(caches.resolved.size).toBe(size);
  });

  it('a token whose signature is tampered after the real one was cached is refused: caches key the whole credential', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const real = await w.jwtFor('alice', { jti: 'cached' });
    const dot = real.lastIndexOf('.');
    // Same header and claims, another signature (its first character changed).
    const tampered = `${real.slice(0, dot + 1)}${real[dot + 1] === 'A' ? 'B' : 'A'}${real.slice(dot + 2)}`;
    const request = (credential: string) => ({ type: 'REQUEST' as const, methodArn: arn('GET', '/orgs/acme/projects/p1'), headers: { Authorization: `Bearer ${credential}` } });
    // Resolved, kept and answered again (TOKEN and REQUEST events alike).
    for (let i = 0; i < 3; i++) {
      expect(effect(await w.rest(w.tokenEvent(real, 'GET', '/orgs/acme/projects/p1')))).toBe('Allow');
      expect(effect(await w.rest(request(real)))).toBe('Allow');
    }
    expect(w.rt.caches.repeats.hits).toBeGreaterThan(0);
    for (let i = 0; i < 2; i++) {
      await expect(w.rest(w.tokenEvent(tampered, 'GET', '/orgs/acme/projects/p1'))).rejects.toThrow(/^Unauthorized$/);
      await expect(w.rest(request(tampered))).rejects.toThrow(/^Unauthorized$/);
    }
  });

  it('a forged token\'s decision builds nothing: no allow-list is worked out for it', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const forge = await forger();
    const events = (from: number) => w.rt.logs.slice(from).map((l) => (JSON.parse(l) as { message: string }).message);
    // A user whose own profile route cannot be written into an ARN: working out their allow-list logs the omission.
    await w.rt.store.users.putMembership('acme', 'odd user', ['org-viewer'], w.rt.clock.seconds);
    const start = w.rt.logs.length;
    expect(effect(await w.rest(w.tokenEvent(await w.jwtFor('odd user'), 'GET', '/orgs/acme/projects/p1')))).toBe('Allow');
    expect(events(start)).toContain('authorizer.entitlements-omitted');
    // Forged, with an email the real token did not have (a principal whose list is not cached yet), on another route.
    const from = w.rt.logs.length;
    await expect(w.rest(w.tokenEvent(await forge(w, 'odd user', { email: 'x@evil.test', email_verified: true }), 'GET', '/orgs/acme/projects'))).rejects.toThrow(/^Unauthorized$/);
    expect(events(from)).toEqual(['authorizer.decision']);
    // The same request with a real token does work its list out: the probe above can see it.
    await w.rest(w.tokenEvent(await w.jwtFor('odd user', { email: 'x@evil.test', email_verified: true }), 'GET', '/orgs/acme/projects'));
    expect(events(from)).toContain('authorizer.entitlements-omitted');
  });

  it('real and forged tokens of one user decided at the same time each get their own answer', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const forge = await forger();
    const path = '/orgs/acme/projects/p1';
    expect(effect(await w.rest(w.tokenEvent(await w.jwtFor('alice'), 'GET', path)))).toBe('Allow');
    for (let round = 0; round < 3; round++) {
      const tokens = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => (i % 2 === 0 ? w.jwtFor('alice', { jti: `c${++seq}` }) : forge(w, 'alice'))));
      const outcomes = await Promise.allSettled(tokens.map((t) => w.rest(w.tokenEvent(t, 'GET', path))));
      outcomes.forEach((o, i) => {
        if (i % 2 === 0) expect(o.status === 'fulfilled' && effect(o.value)).toBe('Allow');
        else expect(o.status === 'rejected' && (o.reason as Error).message).toBe('Unauthorized');
      });
    }
  });

  it('a tampered token (a real signature over another payload) is refused while the user is known', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const path = '/orgs/acme/projects/p1';
    expect(effect(await w.rest(w.tokenEvent(await w.jwtFor('bob'), 'DELETE', path)))).toBe('Allow');
    expect(effect(await w.rest(w.tokenEvent(await w.jwtFor('alice'), 'GET', path)))).toBe('Allow');
    // alice's signed token with bob's claims: bob's roles are cached and bob may delete.
    const [h, , s] = (await w.jwtFor('alice', { jti: 'x' })).split('.');
    const [, p] = (await w.jwtFor('bob', { jti: 'y' })).split('.');
    await expect(w.rest(w.tokenEvent(`${h}.${p}.${s}`, 'DELETE', path))).rejects.toThrow(/^Unauthorized$/);
    expect(decisions(w).at(-1)).toMatchObject({ effect: 'unauthorized', reason: 'jwt-bad-signature' });
  });

  it('a forged token leaves nothing behind: the next real token on that route is decided for the real principal', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const forge = await forger();
    // alice's roles are cached (another route), nothing is decided yet for the billing route.
    expect(effect(await w.rest(w.tokenEvent(await w.jwtFor('alice'), 'GET', '/orgs/acme/projects/p1')))).toBe('Allow');
    const billing = (jwt: string) => w.tokenEvent(jwt, 'GET', '/orgs/acme/billing');
    // A forged token claiming a verified email (billing's condition): refused, and not remembered.
    await expect(w.rest(billing(await forge(w, 'alice', { email: 'alice@acme.test', email_verified: true })))).rejects.toThrow(/^Unauthorized$/);
    // A real token without the email is denied: the forged email was not remembered for alice.
    expect(effect(await w.rest(billing(await w.jwtFor('alice'))))).toBe('Deny');
    const from = w.rt.logs.length;
    const real = await w.rest(billing(await w.jwtFor('alice', { email: 'alice@acme.test', email_verified: true })));
    expect(effect(real)).toBe('Allow');
    const [line] = decisions(w, from);
    expect(line).toMatchObject({ effect: 'allow', principalId: 'alice' });
  });

  it('the signature is judged before the claims: a forged token with failing claims is reported as forged', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const forge = await forger();
    const now = w.rt.clock.seconds;
    await expect(w.rest(w.tokenEvent(await forge(w, 'alice', { exp: now - 3600 }), 'GET', '/orgs/acme/projects/p1'))).rejects.toThrow(/^Unauthorized$/);
    expect(decisions(w).at(-1)).toMatchObject({ effect: 'unauthorized', reason: 'jwt-bad-signature' });
  });

  it('a well-signed token of a known user whose claims fail is refused for its claims', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const path = '/orgs/acme/projects/p1';
    expect(effect(await w.rest(w.tokenEvent(await w.jwtFor('alice'), 'GET', path)))).toBe('Allow');
    const now = w.rt.clock.seconds;
    const cases: [Record<string, unknown>, string][] = [
      [{ exp: now - 3600 }, 'jwt-expired'],
      [{ nbf: now + 3600 }, 'jwt-not-yet-valid'],
      [{ aud: 'another-api' }, 'jwt-claim-invalid'],
      [{ iat: now + 3600 }, 'jwt-claim-invalid'],
    ];
    for (const [claims, reason] of cases) {
      // The issuer's key signs claims set after the helper's own (exp, aud): the last setter wins.
      const { privateKey } = w.idp;
      const jwt = await new SignJWT({ iss: w.idp.issuer, aud: 'api', sub: 'alice', iat: now, exp: now + 600, ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .sign(privateKey);
      await expect(w.rest(w.tokenEvent(jwt, 'GET', path)), reason).rejects.toThrow(/^Unauthorized$/);
      expect(decisions(w).at(-1)).toMatchObject({ effect: 'unauthorized', reason });
    }
  });

  it('a forged token causes no DynamoDB read, for known and unknown users alike', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const forge = await forger();
    expect(effect(await w.rest(w.tokenEvent(await w.jwtFor('alice'), 'GET', '/orgs/acme/projects/p1')))).toBe('Allow');
    const counter = countRequests(w.rt.store.db.client);
    try {
      for (const sub of ['alice', 'bob', 'mallory', 'root', 'alice']) {
        await expect(w.rest(w.tokenEvent(await forge(w, sub), 'GET', '/orgs/acme/projects/p1'))).rejects.toThrow(/^Unauthorized$/);
      }
      expect(counter.commands()).toEqual([]);
    } finally {
      counter.stop();
    }
  });

  it('a credential that fails costs no DynamoDB request even in a fresh container (nothing is read before it is authenticated)', async () => {
    const w = await world({ routes: PURE_ROUTES });
    const forge = await forger();
    const counter = countRequests(w.rt.store.db.client);
    try {
      const refused = ['garbage.jwt.x', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.', await forge(w, 'root'), 'gat_tooshort', `gat_${'A'.repeat(16)}_${'B'.repeat(32)}000000`];
      for (const credential of refused) {
        // A new container each time: empty caches, no policy loaded yet.
        const cold = createRestAuthorizer(w.rt.gateway);
        w.rt.policies.invalidate();
        await expect(cold(w.tokenEvent(credential, 'GET', '/orgs/acme/projects/p1')), credential.slice(0, 20)).rejects.toThrow(/^Unauthorized$/);
      }
      expect(counter.commands()).toEqual([]);
    } finally {
      counter.stop();
    }
  });

  it('a key source that fails while a known user\'s token is decided fails closed', async () => {
    const issuer = 'https://idp.remote.test/';
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
    let up = true;
    const fetchStub = (async () => {
      if (!up) throw new TypeError('fetch failed');
      return new Response(JSON.stringify(jwks), { status: 200, headers: { 'content-type': 'application/json' } });
    }) as unknown as typeof fetch;
    const rt = await testRuntime({
      env: { GATEHOUSE_ISSUERS: JSON.stringify([{ issuer, audience: 'api', jwksUri: 'https://idp.remote.test/jwks' }]), GATEHOUSE_CACHE_TTL_SECONDS: '3600' },
      fetch: fetchStub,
    });
    await rt.store.policy.putRoutes(PURE_ROUTES, rt.clock.seconds);
    await rt.store.users.putMembership('acme', 'alice', ['org-viewer'], rt.clock.seconds);
    const deps = rt.gateway;
    const rest = createRestAuthorizer(deps);
    const http = createHttpAuthorizer({ ...deps, mode: 'simple' });
    const sign = () => new SignJWT({ iss: issuer, aud: 'api', sub: 'alice', jti: `r${++seq}` }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuedAt(rt.clock.seconds).setExpirationTime(rt.clock.seconds + 3600).sign(privateKey);
    const path = '/orgs/acme/projects/p1';
    const event = (jwt: string) => ({ type: 'TOKEN' as const, authorizationToken: `Bearer ${jwt}`, methodArn: arn('GET', path) });
    expect(effect(await rest(event(await sign())))).toBe('Allow');
    expect(effect(await rest(event(await sign())))).toBe('Allow');
    // The key set goes stale (10 minutes) while alice's roles and answers are still cached; the endpoint is down.
    up = false;
    rt.clock.advance(11 * 60);
    const jwt = await sign();
    await expect(rest(event(jwt))).rejects.toThrow(/^Authorizer failure$/);
    expect(await http({ routeArn: arn('GET', path), headers: { authorization: `Bearer ${jwt}` } })).toEqual({ isAuthorized: false });
    const last = rt.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'authorizer.decision').slice(-2);
    for (const l of last) expect(l).toMatchObject({ effect: 'error' });
  });
});

import type { CryptoKey } from 'jose';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseIssuers } from '../../core/config/issuers';
import { KeySourceError, Unauthenticated } from '../../core/errors';
import { JwtVerifier } from '../../core/identity/jwt';
import { TestClock } from '../support/runtime';

const ISS = 'https://idp.remote.test/';
let server: Server;
let base: string;
let handler: (req: IncomingMessage, res: ServerResponse) => void;
let hits = 0;
const keys: { kid: string; privateKey: CryptoKey; jwk: JWK }[] = [];

async function addKey(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  keys.push({ kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } });
}

const serveKeys = (req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
};

beforeAll(async () => {
  await addKey('k1');
  server = createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  hits = 0;
  handler = serveKeys;
});

function verifierFor(path = '/jwks', clock = new TestClock(), timeoutMs = 300) {
  const issuers = parseIssuers(JSON.stringify([{ issuer: ISS, audience: 'api', jwksUri: `${base}${path}` }]));
  return { v: new JwtVerifier({ issuers, now: clock.now, jwksTimeoutMs: timeoutMs }), clock };
}

function token(kid: string, clock: TestClock, sub = 'alice') {
  const k = keys.find((x) => x.kid === kid) ?? keys[0]!;
  return new SignJWT({ iss: ISS, aud: 'api', sub, exp: clock.seconds + 600 }).setProtectedHeader({ alg: 'RS256', kid }).sign(k.privateKey);
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof KeySourceError || err instanceof Unauthenticated) return err.code;
    throw err;
  }
}

describe('remote JWKS', () => {
  it('fetches once and serves from cache', async () => {
    const { v, clock } = verifierFor();
    expect(await outcome(v.verify(await token('k1', clock)))).toBe('ok');
    expect(await outcome(v.verify(await token('k1', clock, 'bob')))).toBe('ok');
    expect(hits).toBe(1);
  });

  it('a new kid triggers one refetch (rotation)', async () => {
    const { v, clock } = verifierFor();
    await v.verify(await token('k1', clock));
    await addKey('k2');
    clock.advance(31);
    expect(await outcome(v.verify(await token('k2', clock)))).toBe('ok');
    expect(hits).toBe(2);
  });

  it('a kid flood causes at most one fetch per cooldown', async () => {
    const { v, clock } = verifierFor();
    await v.verify(await token('k1', clock));
    const forged = await Promise.all(Array.from({ length: 100 }, (_, i) => new SignJWT({ iss: ISS, aud: 'api', sub: 'x', exp: clock.seconds + 600 }).setProtectedHeader({ alg: 'RS256', kid: `evil-${i}` }).sign(keys[0]!.privateKey)));
    clock.advance(31);
    const results = await Promise.all(forged.map((t) => outcome(v.verify(t))));
    expect(results.every((r) => r === 'jwt-unknown-key')).toBe(true);
    expect(hits).toBeLessThanOrEqual(2);
  });

  it.each([
    ['slow server (timeout)', (_q: IncomingMessage, res: ServerResponse) => setTimeout(() => serveKeys(_q, res), 2000), 'jwks-timeout'],
    ['500', (_q: IncomingMessage, res: ServerResponse) => { res.writeHead(500); res.end('{}'); }, 'jwks-http-status'],
    ['redirect (not followed)', (_q: IncomingMessage, res: ServerResponse) => { res.writeHead(302, { location: 'https://evil.test/jwks' }); res.end(); }, 'jwks-http-status'],
    ['not JSON', (_q: IncomingMessage, res: ServerResponse) => { res.writeHead(200); res.end('<html>'); }, 'jwks-invalid'],
    ['no keys array', (_q: IncomingMessage, res: ServerResponse) => { res.writeHead(200); res.end('{"keys":5}'); }, 'jwks-invalid'],
    ['over 150 KB (chunked, no length)', (_q: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":[],"pad":"');
      for (let i = 0; i < 20; i++) res.write('x'.repeat(10_000));
      res.end('"}');
    }, 'jwks-too-large'],
    ['over 150 KB (declared)', (_q: IncomingMessage, res: ServerResponse) => { res.writeHead(200, { 'content-length': String(200_000) }); res.end(); }, 'jwks-too-large'],
  ] as const)('%s fails closed with a key-source error', async (_n, h, code) => {
    handler = h;
    const { v, clock } = verifierFor();
    expect(await outcome(v.verify(await token('k1', clock)))).toBe(code);
  });

  it('unusable keys in a fetched set are ignored, not fatal', async () => {
    handler = (_q, res) => {
      res.writeHead(200);
      res.end(JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'k1' }, { ...keys[0]!.jwk, use: 'enc', kid: 'k1' }, keys[0]!.jwk] }));
    };
    const { v, clock } = verifierFor();
    expect(await outcome(v.verify(await token('k1', clock)))).toBe('ok');
  });

  it('a server that is down fails closed', async () => {
    const issuers = parseIssuers(JSON.stringify([{ issuer: ISS, audience: 'api', jwksUri: 'http://127.0.0.1:9/jwks' }]));
    const clock = new TestClock();
    const v = new JwtVerifier({ issuers, now: clock.now, jwksTimeoutMs: 300 });
    expect(await outcome(v.verify(await token('k1', clock)))).toMatch(/^jwks-(unreachable|timeout)$/);
  });
});

describe('keys remembered per (alg, kid) follow the remote set', () => {
  /** A key pair under `kid`, outside the shared `keys` list. */
  async function pair(kid: string) {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } as JWK };
  }
  let served: JWK[] = [];
  const sign = (k: { kid: string; privateKey: CryptoKey }, clock: TestClock, sub: string) =>
    new SignJWT({ iss: ISS, aud: 'api', sub, exp: clock.seconds + 600 }).setProtectedHeader({ alg: 'RS256', kid: k.kid }).sign(k.privateKey);

  beforeEach(() => {
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: served }));
    };
  });

  // The set first serves `before`; once it is fetched again it serves `after` only.
  // A token of the old key (remembered by then) must fail exactly as if never remembered.
  it.each([
    { change: 'a key removed from the set', beforeKid: 'r1', afterKid: 'r2', oldKeyNow: 'jwt-unknown-key' },
    { change: 'a kid re-keyed in the set', beforeKid: 'same', afterKid: 'same', oldKeyNow: 'jwt-bad-signature' },
  ])('$change stops verifying its old key once the set is fetched again', async ({ beforeKid, afterKid, oldKeyNow }) => {
    const old = await pair(beforeKid);
    const next = await pair(afterKid);
    served = [old.jwk];
    const { v, clock } = verifierFor();
    expect(await outcome(v.verify(await sign(old, clock, 'a1')))).toBe('ok');
    // Remembered: a second token of the same kid verifies without the getter.
    expect(await outcome(v.verify(await sign(old, clock, 'a2')))).toBe('ok');
    served = [next.jwk];
    clock.advance(11 * 60); // past the set's 10-minute age: the next use fetches it again
    expect(await outcome(v.verify(await sign(next, clock, 'b1')))).toBe('ok');
    expect(await outcome(v.verify(await sign(old, clock, 'a3')))).toBe(oldKeyNow);
    expect(await outcome(v.verify(await sign(next, clock, 'b2')))).toBe('ok');
  });

  it('a forged signature under a remembered kid is refused', async () => {
    const real = await pair('f1');
    const attacker = await pair('f1');
    served = [real.jwk];
    const { v, clock } = verifierFor();
    expect(await outcome(v.verify(await sign(real, clock, 'd1')))).toBe('ok');
    expect(await outcome(v.verify(await sign(attacker, clock, 'root')))).toBe('jwt-bad-signature');
  });
});

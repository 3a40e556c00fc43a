import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseIssuers } from '../../core/config/issuers';
import { KeySourceError, Unauthenticated } from '../../core/errors';
import { MAX_JWKS_BYTES, RemoteJwks } from '../../core/identity/jwks';
import { JwtVerifier } from '../../core/identity/jwt';

const ISS = 'https://idp.remote.test/';

/** A frozen clock in milliseconds. */
class Clock {
  ms = Date.UTC(2026, 10, 22, 12, 0, 0);
  now = (): number => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
  get s(): number {
    return Math.floor(this.ms / 1000);
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let base: string;
let handler: Handler;
/** Requests per path since the last reset. */
let hits: Record<string, number>;
const keys: { kid: string; privateKey: CryptoKey; jwk: JWK }[] = [];
/** Timers started by slow handlers, cleared after each test so the server can close. */
const timers: NodeJS.Timeout[] = [];

async function addKey(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  keys.push({ kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } });
}
const keyFor = (kid: string) => keys.find((k) => k.kid === kid) ?? keys[0]!;

const json = (body: unknown, status = 200): Handler => (_q, res) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};
const serveKeys: Handler = (q, res) => json({ keys: keys.map((k) => k.jwk) })(q, res);

beforeAll(async () => {
  await addKey('k1');
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits[path] = (hits[path] ?? 0) + 1;
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => {
  server.closeAllConnections();
  server.close(() => r());
}));
beforeEach(() => {
  hits = {};
  handler = serveKeys;
});
afterEach(() => {
  for (const t of timers.splice(0)) clearTimeout(t);
});

function issuer(path = '/jwks', extra: Record<string, unknown> = {}) {
  return parseIssuers(JSON.stringify([{ issuer: ISS, audience: 'api', jwksUri: `${base}${path}`, ...extra }]))[0]!;
}

function verifierFor(path = '/jwks', clock = new Clock(), timeoutMs = 300) {
  return { v: new JwtVerifier({ issuers: [issuer(path)], now: clock.now, jwksTimeoutMs: timeoutMs }), clock };
}

function token(kid: string, clock: Clock, sub = 'alice', signer = keyFor(kid)) {
  return new SignJWT({ iss: ISS, aud: 'api', sub, exp: clock.s + 600 }).setProtectedHeader({ alg: 'RS256', kid }).sign(signer.privateKey);
}

/** The key a RemoteJwks resolves for a header (jose's getter type admits a non-promise). */
const keyOf = (remote: RemoteJwks, header: { alg: string; kid?: string }) => Promise.resolve(remote.getKey(header, undefined as never));

/** 'ok', or the code of a gatehouse error. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof KeySourceError || err instanceof Unauthenticated) return err.code;
    throw err;
  }
}

describe('remote JWKS: happy path and caching', () => {
  it('construction does no I/O; the first verification fetches once, then the cache serves', async () => {
    const { v, clock } = verifierFor();
    expect(hits['/jwks']).toBeUndefined();
    expect(await outcome(v.verify(await token('k1', clock)))).toBe('ok');
    expect(await outcome(v.verify(await token('k1', clock, 'bob')))).toBe('ok');
    expect(hits['/jwks']).toBe(1);
  });

  it('concurrent cold verifications share one in-flight fetch', async () => {
    const { v, clock } = verifierFor();
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => token('k1', clock, `u${i}`)));
    const results = await Promise.all(tokens.map((t) => outcome(v.verify(t))));
    expect(results.every((r) => r === 'ok')).toBe(true);
    expect(hits['/jwks']).toBe(1);
  });

  it('the key set is refetched once it is 10 minutes old', async () => {
    const { v, clock } = verifierFor();
    await v.verify(await token('k1', clock));
    clock.advance(599);
    await v.verify(await token('k1', clock, 'b'));
    expect(hits['/jwks']).toBe(1);
    clock.advance(2);
    await v.verify(await token('k1', clock, 'c'));
    expect(hits['/jwks']).toBe(2);
  });

  it('a stale key set whose refresh fails is not used (fail closed)', async () => {
    const { v, clock } = verifierFor();
    await v.verify(await token('k1', clock));
    handler = json('oops', 500);
    clock.advance(601);
    expect(await outcome(v.verify(await token('k1', clock, 'b')))).toBe('jwks-http-status');
  });

  it('unusable keys in a fetched set are ignored, not fatal', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    handler = json({
      keys: [
        { kty: 'oct', k: 'c2VjcmV0', kid: 'k1' },
        { ...keys[0]!.jwk, use: 'enc' },
        { ...small, kid: 'k1' },
        { ...keys[0]!.jwk, d: 'AAAA' },
        { ...keys[0]!.jwk, alg: 'RS512' },
        'junk',
        null,
        keys[0]!.jwk,
      ],
    });
    const { v, clock } = verifierFor();
    expect(await outcome(v.verify(await token('k1', clock)))).toBe('ok');
  });

  it('a key set with only unusable keys verifies nothing (401, no key)', async () => {
    handler = json({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'k1' }] });
    const { v, clock } = verifierFor();
    expect(await outcome(v.verify(await token('k1', clock)))).toBe('jwt-unknown-key');
  });
});

describe('remote JWKS: rotation and kid floods', () => {
  it('a new kid triggers one refetch (rotation)', async () => {
    const { v, clock } = verifierFor();
    await v.verify(await token('k1', clock));
    await addKey('k2');
    clock.advance(31);
    expect(await outcome(v.verify(await token('k2', clock)))).toBe('ok');
    expect(await outcome(v.verify(await token('k2', clock, 'bob')))).toBe('ok');
    expect(hits['/jwks']).toBe(2);
  });

  it('within the cooldown an unknown kid does not refetch; after it, it does', async () => {
    const { v, clock } = verifierFor();
    await v.verify(await token('k1', clock));
    await addKey('k3');
    clock.advance(10);
    expect(await outcome(v.verify(await token('k3', clock)))).toBe('jwt-unknown-key');
    expect(hits['/jwks']).toBe(1);
    clock.advance(21);
    expect(await outcome(v.verify(await token('k3', clock)))).toBe('ok');
    expect(hits['/jwks']).toBe(2);
  });

  it('100 concurrent unknown kids cause at most one refetch', async () => {
    const { v, clock } = verifierFor();
    await v.verify(await token('k1', clock));
    clock.advance(31);
    const forged = await Promise.all(Array.from({ length: 100 }, (_, i) => token(`evil-${i}`, clock, 'x', keys[0]!)));
    const results = await Promise.all(forged.map((t) => outcome(v.verify(t))));
    expect(results.every((r) => r === 'jwt-unknown-key')).toBe(true);
    expect(hits['/jwks']).toBeLessThanOrEqual(2);
  });

  it('100 sequential unknown kids within a cooldown cause at most one refetch', async () => {
    const { v, clock } = verifierFor();
    await v.verify(await token('k1', clock));
    clock.advance(31);
    for (let i = 0; i < 100; i++) {
      expect(await outcome(v.verify(await token(`flood-${i}`, clock, 'x', keys[0]!)))).toBe('jwt-unknown-key');
      clock.advance(0.1);
    }
    expect(hits['/jwks']).toBe(2);
  });

  it('a known kid keeps working during a flood', async () => {
    const { v, clock } = verifierFor();
    await v.verify(await token('k1', clock));
    clock.advance(31);
    const flood = Array.from({ length: 50 }, (_, i) => token(`evil-${i}`, clock, 'x', keys[0]!).then((t) => outcome(v.verify(t))));
    const good = token('k1', clock, 'carol').then((t) => outcome(v.verify(t)));
    expect(await good).toBe('ok');
    await Promise.all(flood);
    expect(hits['/jwks']).toBeLessThanOrEqual(2);
  });
});

describe('remote JWKS: refused answers fail closed with a KeySourceError', () => {
  const padTo = (bytes: number) => {
    const head = '{"keys":[],"pad":"';
    return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
  };

  it.each<[string, Handler, string]>([
    ['slow headers (timeout)', (q, res) => void timers.push(setTimeout(() => serveKeys(q, res), 2000)), 'jwks-timeout'],
    ['a slow body (timeout covers the body)', (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":[');
      timers.push(setTimeout(() => res.end(']}'), 2000));
    }, 'jwks-timeout'],
    ['500', json('{}', 500), 'jwks-http-status'],
    ['404', json('{"keys":[]}', 404), 'jwks-http-status'],
    ['204', (_q, res) => { res.writeHead(204); res.end(); }, 'jwks-http-status'],
    ['201 with a key set', json({ keys: [] }, 201), 'jwks-http-status'],
    ['not JSON', (_q, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>'); }, 'jwks-invalid'],
    ['empty body', (_q, res) => { res.writeHead(200); res.end(); }, 'jwks-invalid'],
    ['a JSON array', json([{ kty: 'RSA' }]), 'jwks-invalid'],
    ['JSON null', json('null'), 'jwks-invalid'],
    ['keys not an array', json({ keys: 5 }), 'jwks-invalid'],
    ['no keys member', json({ jwks: [] }), 'jwks-invalid'],
    ['not UTF-8', (_q, res) => { res.writeHead(200); res.end(Buffer.from([0x7b, 0xff, 0x7d])); }, 'jwks-invalid'],
    ['over 150 KB, chunked without a length', (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":[],"pad":"');
      for (let i = 0; i < 20; i++) res.write('x'.repeat(10_000));
      res.end('"}');
    }, 'jwks-too-large'],
    ['over 150 KB, endless stream', (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = 'x'.repeat(16_384);
      const pump = () => {
        while (res.write(chunk)) {
          if (res.writableLength > 1_000_000) break;
        }
      };
      res.on('drain', pump);
      pump();
    }, 'jwks-too-large'],
    ['over 150 KB by one byte', (_q, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(padTo(MAX_JWKS_BYTES + 1)); }, 'jwks-too-large'],
    ['a declared length over 150 KB', (_q, res) => { res.writeHead(200, { 'content-length': String(200_000) }); res.write('{'); }, 'jwks-too-large'],
  ])('%s', async (_n, h, code) => {
    handler = h;
    const { v, clock } = verifierFor();
    const err = await v.verify(await token('k1', clock)).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(KeySourceError);
    expect((err as KeySourceError).code).toBe(code);
  });

  it('a body of exactly 150 KB is accepted', async () => {
    const body = JSON.stringify({ keys: keys.map((k) => k.jwk), pad: '' });
    const padded = `${body.slice(0, -2)}${'x'.repeat(MAX_JWKS_BYTES - body.length)}"}`;
    expect(Buffer.byteLength(padded)).toBe(MAX_JWKS_BYTES);
    handler = json(padded);
    const { v, clock } = verifierFor();
    expect(await outcome(v.verify(await token('k1', clock)))).toBe('ok');
  });

  it('a 3xx redirect is not followed', async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      handler = (req, res) => {
        if (req.url === '/moved') {
          res.writeHead(status, { location: `${base}/jwks-real` });
          res.end();
        } else serveKeys(req, res);
      };
      const { v, clock } = verifierFor('/moved');
      expect(await outcome(v.verify(await token('k1', clock)))).toBe('jwks-http-status');
    }
    expect(hits['/jwks-real']).toBeUndefined();
  });

  it('a server that is down fails closed', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const clock = new Clock();
    const v = new JwtVerifier({ issuers: [{ ...issuer(), jwksUri: `http://127.0.0.1:${port}/jwks` }], now: clock.now, jwksTimeoutMs: 300 });
    expect(await outcome(v.verify(await token('k1', clock)))).toBe('jwks-unreachable');
  });

  it('after a failure, requests fail fast for the back-off, then a recovered endpoint is used', async () => {
    handler = json('down', 503);
    const { v, clock } = verifierFor();
    expect(await outcome(v.verify(await token('k1', clock)))).toBe('jwks-http-status');
    expect(await outcome(v.verify(await token('k1', clock, 'b')))).toBe('jwks-http-status');
    expect(hits['/jwks']).toBe(1);
    handler = serveKeys;
    clock.advance(5);
    expect(await outcome(v.verify(await token('k1', clock, 'c')))).toBe('ok');
    expect(hits['/jwks']).toBe(2);
  });

  it('a failing endpoint under a kid flood is fetched at most once per cooldown', async () => {
    const { v, clock } = verifierFor();
    await v.verify(await token('k1', clock));
    handler = json('down', 500);
    clock.advance(31);
    const results = [];
    for (let i = 0; i < 50; i++) {
      results.push(await outcome(v.verify(await token(`flood-${i}`, clock, 'x', keys[0]!))));
      clock.advance(0.2);
    }
    expect(results[0]).toBe('jwks-http-status');
    expect(results.slice(1).every((r) => r === 'jwt-unknown-key')).toBe(true);
    expect(hits['/jwks']).toBe(2);
  });
});

describe('RemoteJwks with an injected fetch', () => {
  it('asks for JSON, refuses redirects and bounds the request with a signal', async () => {
    const seen: RequestInit[] = [];
    const fake = (async (_url: string | URL | Request, init?: RequestInit) => {
      seen.push(init ?? {});
      return new Response(JSON.stringify({ keys: [keys[0]!.jwk] }), { status: 200 });
    }) as typeof fetch;
    const clock = new Clock();
    const remote = new RemoteJwks(issuer(), { fetch: fake, now: clock.now });
    expect(seen).toHaveLength(0);
    const key = await keyOf(remote, { alg: 'RS256', kid: 'k1' });
    expect(key).toBeDefined();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.redirect).toBe('manual');
    expect(seen[0]!.signal).toBeInstanceOf(AbortSignal);
    expect(new Headers(seen[0]!.headers).get('accept')).toBe('application/json');
    expect(remote.fetches).toBe(1);
  });

  it('an opaque redirect (status 0, as browsers report redirect: "manual") is refused', async () => {
    const fake = (async () => ({ status: 0, type: 'opaqueredirect', headers: new Headers(), body: null }) as unknown as Response) as typeof fetch;
    const remote = new RemoteJwks(issuer(), { fetch: fake });
    const err = await keyOf(remote, { alg: 'RS256', kid: 'k1' }).then(() => undefined, (e: unknown) => e);
    expect((err as KeySourceError).code).toBe('jwks-http-status');
  });

  it('a connection failure is retried once (stale keep-alive sockets), then fails closed', async () => {
    let calls = 0;
    const flaky = (async () => {
      if (++calls === 1) throw new TypeError('fetch failed');
      return new Response(JSON.stringify({ keys: [keys[0]!.jwk] }), { status: 200 });
    }) as typeof fetch;
    await keyOf(new RemoteJwks(issuer(), { fetch: flaky }), { alg: 'RS256', kid: 'k1' });
    expect(calls).toBe(2);
    calls = 0;
    const down = (async () => {
      calls++;
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    await expect(keyOf(new RemoteJwks(issuer(), { fetch: down }), { alg: 'RS256', kid: 'k1' })).rejects.toMatchObject({ code: 'jwks-unreachable' });
    expect(calls).toBe(2);
  });

  it('a fetch that throws is jwks-unreachable; an abort is jwks-timeout', async () => {
    const boom = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    const abort = (async () => {
      throw new DOMException('timed out', 'TimeoutError');
    }) as typeof fetch;
    const e1 = await keyOf(new RemoteJwks(issuer(), { fetch: boom }), { alg: 'RS256' }).catch((e: unknown) => e);
    const e2 = await keyOf(new RemoteJwks(issuer(), { fetch: abort }), { alg: 'RS256' }).catch((e: unknown) => e);
    expect((e1 as KeySourceError).code).toBe('jwks-unreachable');
    expect((e2 as KeySourceError).code).toBe('jwks-timeout');
  });

  it('cooldown, cache age and back-off are constructor options', async () => {
    let calls = 0;
    const fake = (async () => {
      calls++;
      return new Response(JSON.stringify({ keys: [keys[0]!.jwk] }), { status: 200 });
    }) as typeof fetch;
    const clock = new Clock();
    const remote = new RemoteJwks(issuer(), { fetch: fake, now: clock.now, cooldownMs: 1000, maxAgeMs: 5000 });
    await keyOf(remote, { alg: 'RS256', kid: 'k1' });
    await expect(keyOf(remote, { alg: 'RS256', kid: 'nope' })).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    expect(calls).toBe(1);
    clock.advance(1);
    await expect(keyOf(remote, { alg: 'RS256', kid: 'nope' })).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    expect(calls).toBe(2);
    clock.advance(5);
    await keyOf(remote, { alg: 'RS256', kid: 'k1' });
    expect(calls).toBe(3);
  });
});

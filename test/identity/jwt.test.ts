import { createHmac, webcrypto } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { parseIssuers, type IssuerConfig } from '../../core/config/issuers';
import { KeySourceError, Unauthenticated } from '../../core/errors';
import { JwtVerifier, MAX_JWT_LENGTH, type VerifiedJwt } from '../../core/identity/jwt';

const ISS = 'https://idp.test/';
const OTHER_ISS = 'https://other.test/';

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

type Alg = 'RS256' | 'ES256' | 'EdDSA';
interface TestKey {
  alg: Alg;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

let rsa: TestKey;
let ec: TestKey;
let ed: TestKey;
let rsaPem: string;
let otherRsa: TestKey;

async function makeKey(alg: Alg, kid: string): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { alg, kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** The same RSA private key, imported for RSA-PSS (WebCrypto keys are bound to one algorithm). */
async function asPss(key: TestKey): Promise<CryptoKey> {
  return (await importJWK({ ...(await exportJWK(key.privateKey)), alg: 'PS256' }, 'PS256')) as CryptoKey;
}

/** Signs `header.payload` with raw WebCrypto, so tests can put anything in either part. */
async function rawSign(key: CryptoKey, alg: Alg, data: string): Promise<string> {
  const params = alg === 'RS256' ? { name: 'RSASSA-PKCS1-v1_5' } : alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' };
  return Buffer.from(await webcrypto.subtle.sign(params, key as webcrypto.CryptoKey, Buffer.from(data))).toString('base64url');
}

/** A token with exactly this header and payload (payload may be raw JSON text), signed by `key`. */
async function craft(header: Record<string, unknown>, payload: Record<string, unknown> | string, key: TestKey = rsa): Promise<string> {
  const body = `${b64(header)}.${b64(payload)}`;
  return `${body}.${await rawSign(key.privateKey, key.alg, body)}`;
}

function claimsAt(clock: Clock, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const c: Record<string, unknown> = { iss: ISS, aud: 'api', sub: 'alice', iat: clock.s, exp: clock.s + 600, ...extra };
  for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
  return c;
}

/** A well-formed token from `key` (default RSA) with `extra` claims (undefined removes a claim). */
function token(clock: Clock, extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key: TestKey = rsa): Promise<string> {
  return craft({ alg: key.alg, kid: key.kid, ...header }, claimsAt(clock, extra), key);
}

function issuers(extra: Record<string, unknown> = {}, keys: JWK[] = [rsa.jwk, ec.jwk, ed.jwk]): IssuerConfig[] {
  return parseIssuers(JSON.stringify([{ issuer: ISS, audience: ['api', 'api2'], jwks: { keys }, ...extra }]));
}

function verifierWith(extra: Record<string, unknown> = {}, clock = new Clock(), keys?: JWK[]) {
  return { v: new JwtVerifier({ issuers: issuers(extra, keys), now: clock.now }), clock };
}

/** 'accepted', or the Unauthenticated code. Anything else (a crash) fails the test. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    if (err instanceof Unauthenticated) return err.code;
    throw err;
  }
}

beforeAll(async () => {
  rsa = await makeKey('RS256', 'rsa');
  ec = await makeKey('ES256', 'ec');
  ed = await makeKey('EdDSA', 'ed');
  otherRsa = await makeKey('RS256', 'rsa'); // same kid, different key
  rsaPem = await exportSPKI(rsa.publicKey);
});

describe('accepted tokens', () => {
  it.each(['RS256', 'ES256', 'EdDSA'] as const)('a well-formed %s token verifies and yields the user', async (alg) => {
    const { v, clock } = verifierWith();
    const key = { RS256: rsa, ES256: ec, EdDSA: ed }[alg];
    const r = await v.verify(await token(clock, { email: 'a@x.test', email_verified: true, groups: ['g1', 'g2'] }, {}, key));
    expect(r).toMatchObject({ issuer: ISS, sub: 'alice', userId: 'alice', email: 'a@x.test', emailVerified: true, groups: ['g1', 'g2'], exp: clock.s + 600 });
    expect(r.claims.iss).toBe(ISS);
  });

  it('derives the allow-list from the inline keys when none is configured', () => {
    expect(issuers()[0]!.algorithms).toEqual(['RS256', 'ES256', 'EdDSA']);
  });

  it('a token signed with jose itself verifies (interop)', async () => {
    const { v, clock } = verifierWith();
    const t = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'ec', typ: 'JWT' }).setIssuer(ISS).setAudience('api2').setSubject('bob').setIssuedAt(clock.s).setExpirationTime(clock.s + 60).sign(ec.privateKey);
    expect((await v.verify(t)).userId).toBe('bob');
  });

  it('results are frozen (cached results are shared)', async () => {
    const { v, clock } = verifierWith();
    const r = await v.verify(await token(clock, { groups: ['g'], nested: { a: 1 } }));
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.claims)).toBe(true);
    expect(Object.isFrozen(r.groups)).toBe(true);
    expect(Object.isFrozen(r.claims.nested)).toBe(true);
  });

  it('construction does no I/O, even with a remote key set', () => {
    let calls = 0;
    const fetchSpy = (async () => {
      calls++;
      throw new Error('no');
    }) as typeof fetch;
    new JwtVerifier({ issuers: parseIssuers(JSON.stringify([{ issuer: ISS, audience: 'api', jwksUri: 'https://idp.test/jwks' }])), fetch: fetchSpy });
    expect(calls).toBe(0);
  });
});

describe('alg "none" and algorithm confusion', () => {
  const variants = ['none', 'None', 'NONE', 'nOnE'];
  it.each(variants)('alg %s is refused, with an empty or a junk signature', async (alg) => {
    const { v, clock } = verifierWith();
    const body = `${b64({ alg, typ: 'JWT' })}.${b64(claimsAt(clock, { sub: 'root' }))}`;
    for (const t of [`${body}.`, `${body}.${b64('sig')}`]) expect(await outcome(v.verify(t))).toBe('jwt-alg-not-allowed');
  });

  it.each([['missing', undefined], ['a number', 256], ['an array', ['RS256']], ['lower case', 'rs256'], ['HS256', 'HS256'], ['RS256 with a space', 'RS256 ']])('alg %s is refused', async (_n, alg) => {
    const { v, clock } = verifierWith();
    const header = alg === undefined ? { kid: 'rsa' } : { alg, kid: 'rsa' };
    const body = `${b64(header)}.${b64(claimsAt(clock))}`;
    expect(await outcome(v.verify(`${body}.${await rawSign(rsa.privateKey, 'RS256', body)}`))).toBe('jwt-alg-not-allowed');
  });

  it('HS256 signed with the RSA public key as the secret (RS/HS confusion) is refused', async () => {
    const { v, clock } = verifierWith();
    const secrets = [rsaPem, `${rsaPem}\n`, rsaPem.trim(), JSON.stringify(rsa.jwk), rsa.jwk.n!, Buffer.from(rsa.jwk.n!, 'base64url').toString('latin1')];
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      for (const secret of secrets) {
        const body = `${b64({ alg, kid: 'rsa', typ: 'JWT' })}.${b64(claimsAt(clock, { sub: 'root' }))}`;
        const sig = createHmac(`sha${alg.slice(2)}`, secret).update(body).digest('base64url');
        expect(await outcome(v.verify(`${body}.${sig}`))).toBe('jwt-alg-not-allowed');
      }
    }
  });

  it('even a hand-built config that lists HS256 cannot make an RSA key an HMAC secret', async () => {
    const clock = new Clock();
    const [cfg] = issuers();
    const v = new JwtVerifier({ issuers: [{ ...cfg!, algorithms: [...cfg!.algorithms, 'HS256' as never] }], now: clock.now });
    const body = `${b64({ alg: 'HS256', kid: 'rsa' })}.${b64(claimsAt(clock, { sub: 'root' }))}`;
    const sig = createHmac('sha256', rsaPem).update(body).digest('base64url');
    expect(await outcome(v.verify(`${body}.${sig}`))).not.toBe('accepted');
  });

  it('an algorithm outside the allow-list is refused before key lookup (PS256 on the RS256 key)', async () => {
    const { v, clock } = verifierWith();
    const t = await new SignJWT(claimsAt(clock)).setProtectedHeader({ alg: 'PS256', kid: 'rsa' }).sign(await asPss(rsa));
    expect(await outcome(v.verify(t))).toBe('jwt-alg-not-allowed');
  });

  it('an allowed algorithm that does not fit the named key finds no key', async () => {
    // The issuer allows RS256 and PS256, but the key is pinned to RS256.
    const { v, clock } = verifierWith({ algorithms: ['RS256', 'PS256'] }, new Clock(), [rsa.jwk]);
    const ps = await new SignJWT(claimsAt(clock)).setProtectedHeader({ alg: 'PS256', kid: 'rsa' }).sign(await asPss(rsa));
    expect(await outcome(v.verify(ps))).toBe('jwt-unknown-key');
    // Control: the same token verifies once the key is not pinned and PS256 is allowed.
    const unpinned = verifierWith({ algorithms: ['RS256', 'PS256'] }, clock, [{ ...rsa.jwk, alg: undefined } as JWK]).v;
    expect(await outcome(unpinned.verify(ps))).toBe('accepted');
  });

  it('a key remembered for one algorithm is never used for another under the same kid', async () => {
    const clock = new Clock();
    const rs = () => new SignJWT(claimsAt(clock, { jti: `rs${Math.random()}` })).setProtectedHeader({ alg: 'RS256', kid: 'rsa' }).sign(rsa.privateKey);
    const ps = async () => new SignJWT(claimsAt(clock, { jti: `ps${Math.random()}` })).setProtectedHeader({ alg: 'PS256', kid: 'rsa' }).sign(await asPss(rsa));
    // Pinned to RS256: after RS256 tokens verified (the key is remembered), PS256 still finds no key.
    const pinned = verifierWith({ algorithms: ['RS256', 'PS256'] }, clock, [rsa.jwk]).v;
    expect(await outcome(pinned.verify(await rs()))).toBe('accepted');
    expect(await outcome(pinned.verify(await rs()))).toBe('accepted');
    expect(await outcome(pinned.verify(await ps()))).toBe('jwt-unknown-key');
    // Not pinned: each algorithm gets its own key object, in either order.
    const unpinned = verifierWith({ algorithms: ['RS256', 'PS256'] }, clock, [{ ...rsa.jwk, alg: undefined } as JWK]).v;
    for (const make of [rs, rs, ps, ps, rs, ps]) expect(await outcome(unpinned.verify(await make()))).toBe('accepted');
  });

  it('ES384 on the ES256 key: refused when not allowed, and finds no key when allowed', async () => {
    const clock = new Clock();
    const body = `${b64({ alg: 'ES384', kid: 'ec' })}.${b64(claimsAt(clock))}`;
    const sig = Buffer.from(await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, ec.privateKey as webcrypto.CryptoKey, Buffer.from(body))).toString('base64url');
    expect(await outcome(verifierWith({}, clock).v.verify(`${body}.${sig}`))).toBe('jwt-alg-not-allowed');
    const { publicKey } = await generateKeyPair('ES384');
    const es384 = { ...(await exportJWK(publicKey)), kid: 'ec384', alg: 'ES384' };
    const both = verifierWith({}, clock, [ec.jwk, es384]).v;
    expect(await outcome(both.verify(`${body}.${sig}`))).toBe('jwt-unknown-key');
  });

  it('a header naming a key of another type finds no key (RS256 on the EC kid, EdDSA on the RSA kid)', async () => {
    const { v, clock } = verifierWith();
    expect(await outcome(v.verify(await token(clock, {}, { kid: 'ec' })))).toBe('jwt-unknown-key');
    expect(await outcome(v.verify(await token(clock, {}, { kid: 'rsa' }, ed)))).toBe('jwt-unknown-key');
  });

  it('an ES256 header over an RSA signature is a bad signature', async () => {
    const { v, clock } = verifierWith();
    const body = `${b64({ alg: 'ES256', kid: 'ec' })}.${b64(claimsAt(clock))}`;
    expect(await outcome(v.verify(`${body}.${await rawSign(rsa.privateKey, 'RS256', body)}`))).toBe('jwt-bad-signature');
  });
});

describe('keys named or carried by the token', () => {
  it.each(['jwk', 'jku', 'x5u', 'x5c', 'crit'])('a %s header is refused, even alongside the real kid', async (h) => {
    const { v, clock } = verifierWith();
    const attacker = await makeKey('RS256', 'rsa');
    const value = h === 'jwk' ? attacker.jwk : h === 'x5c' ? ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] : h === 'crit' ? ['exp'] : 'https://evil.test/jwks.json';
    const forged = await craft({ alg: 'RS256', kid: 'rsa', [h]: value, ...(h === 'crit' ? { exp: 1 } : {}) }, claimsAt(clock, { sub: 'root' }), attacker);
    expect(await outcome(v.verify(forged))).toBe('jwt-forbidden-header');
    // And signed by the real key: the header alone is enough to refuse.
    const real = await token(clock, {}, { [h]: value });
    expect(await outcome(v.verify(real))).toBe('jwt-forbidden-header');
  });

  it.each([
    ['path traversal', '../../../../etc/passwd'],
    ['url-encoded traversal', '..%2f..%2fetc%2fpasswd'],
    ['SQL-ish', "' OR '1'='1"],
    ['SQL drop', 'rsa"; DROP TABLE keys; --'],
    ['very long', 'k'.repeat(2000)],
    ['unknown', 'unknown'],
    ['empty', ''],
    ['NUL', '\u0000'],
    ['case variant', 'RSA'],
    ['trailing space', 'rsa '],
    ['url', 'https://evil.test/key'],
  ])('kid injection (%s) finds no key', async (_n, kid) => {
    const { v, clock } = verifierWith();
    expect(await outcome(v.verify(await token(clock, {}, { kid })))).toBe('jwt-unknown-key');
  });

  it.each([['a number', 1], ['an object', { $ne: null }], ['an array', ['rsa']], ['null', null]])('a kid that is %s is malformed', async (_n, kid) => {
    const { v, clock } = verifierWith();
    expect(await outcome(v.verify(await token(clock, {}, { kid })))).toBe('jwt-malformed');
  });

  it('a kid so long the token is over 8 KB is refused for size', async () => {
    const { v, clock } = verifierWith();
    expect(await outcome(v.verify(await token(clock, {}, { kid: 'k'.repeat(7000) })))).toBe('jwt-too-large');
  });
});

describe('signatures', () => {
  const P256_N = Buffer.from('FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551', 'hex');
  it.each([
    ['r = s = 0 (CVE-2022-21449)', Buffer.alloc(64)],
    ['r = s = n', Buffer.concat([P256_N, P256_N])],
    ['r = 0, s = 1', Buffer.concat([Buffer.alloc(32), Buffer.alloc(31), Buffer.from([1])])],
    ['DER-encoded zero', Buffer.from('3006020100020100', 'hex')],
    ['empty', Buffer.alloc(0)],
  ])('a psychic ECDSA signature (%s) is refused', async (_n, sig) => {
    const { v, clock } = verifierWith();
    const body = `${b64({ alg: 'ES256', kid: 'ec' })}.${b64(claimsAt(clock, { sub: 'root' }))}`;
    expect(await outcome(v.verify(`${body}.${sig.toString('base64url')}`))).toMatch(/^jwt-(bad-signature|malformed)$/);
  });

  it('r = s = 0 is a bad signature, specifically', async () => {
    const { v, clock } = verifierWith();
    const body = `${b64({ alg: 'ES256', kid: 'ec' })}.${b64(claimsAt(clock, { sub: 'root' }))}`;
    expect(await outcome(v.verify(`${body}.${Buffer.alloc(64).toString('base64url')}`))).toBe('jwt-bad-signature');
  });

  it('another key using the real kid is a bad signature', async () => {
    const { v, clock } = verifierWith();
    expect(await outcome(v.verify(await token(clock, { sub: 'root' }, {}, otherRsa)))).toBe('jwt-bad-signature');
  });

  it('a tampered payload or header is a bad signature', async () => {
    const { v, clock } = verifierWith();
    const [h, , s] = (await token(clock)).split('.');
    expect(await outcome(v.verify(`${h}.${b64(claimsAt(clock, { sub: 'root' }))}.${s}`))).toBe('jwt-bad-signature');
    const [, p, s2] = (await token(clock)).split('.');
    expect(await outcome(v.verify(`${b64({ alg: 'RS256', kid: 'rsa', typ: 'JWT' })}.${p}.${s2}`))).toBe('jwt-bad-signature');
  });

  it('a token with an empty RS256 signature is refused', async () => {
    const { v, clock } = verifierWith();
    const [h, p] = (await token(clock)).split('.');
    expect(await outcome(v.verify(`${h}.${p}.`))).toMatch(/^jwt-(bad-signature|malformed)$/);
  });

  it('a key of another issuer with the same kid cannot sign for this one', async () => {
    const clock = new Clock();
    const cfg = parseIssuers(JSON.stringify([
      { issuer: ISS, audience: 'api', jwks: { keys: [rsa.jwk] } },
      // Its own user id prefix: two issuers never name the same user (DESIGN §2).
      { issuer: OTHER_ISS, audience: 'api', jwks: { keys: [otherRsa.jwk] }, userIdPrefix: 'other|' },
    ]));
    const v = new JwtVerifier({ issuers: cfg, now: clock.now });
    expect(await outcome(v.verify(await token(clock, { iss: OTHER_ISS }, {}, otherRsa)))).toBe('accepted');
    expect(await outcome(v.verify(await token(clock, { iss: ISS }, {}, otherRsa)))).toBe('jwt-bad-signature');
  });

  it('a forged token is reported as forged even when its claims fail too (the signature is checked first)', async () => {
    const { v, clock } = verifierWith();
    for (const claims of [{ exp: clock.s - 3600 }, { aud: 'other' }, { sub: undefined }, { nbf: clock.s + 3600 }]) {
      expect(await outcome(v.verify(await token(clock, claims, {}, otherRsa)))).toBe('jwt-bad-signature');
    }
    // The same claims, really signed: refused for the claim.
    expect(await outcome(v.verify(await token(clock, { exp: clock.s - 3600 })))).toBe('jwt-expired');
  });

  it('a signed payload that is not well-formed UTF-8 is malformed (jose\'s strict decoding)', async () => {
    const { v, clock } = verifierWith();
    const json = JSON.stringify(claimsAt(clock, { sub: 'al__ice' }));
    const bytes = Buffer.from(json);
    // A lone continuation byte inside the sub string: lenient decoding would read U+FFFD.
    bytes[json.indexOf('__')] = 0x80;
    const body = `${b64({ alg: 'RS256', kid: 'rsa' })}.${bytes.toString('base64url')}`;
    expect(await outcome(v.verify(`${body}.${await rawSign(rsa.privateKey, 'RS256', body)}`))).toBe('jwt-malformed');
  });

  it('a kid-less token is tried against each matching key (bounded), forged ones still fail', async () => {
    const second = await makeKey('RS256', 'second');
    const { v, clock } = verifierWith({}, new Clock(), [rsa.jwk, { ...second.jwk, kid: undefined } as JWK]);
    expect(await outcome(craft({ alg: 'RS256' }, claimsAt(clock), second).then((t) => v.verify(t)))).toBe('accepted');
    expect(await outcome(craft({ alg: 'RS256' }, claimsAt(clock), otherRsa).then((t) => v.verify(t)))).toBe('jwt-bad-signature');
  });
});

describe('claims and clock edges', () => {
  type Case = [name: string, config: Record<string, unknown>, claims: (c: Clock) => Record<string, unknown>, expected: string];
  const cases: Case[] = [
    ['exp = now, no tolerance', { clockToleranceSeconds: 0 }, (c) => ({ exp: c.s }), 'jwt-expired'],
    ['exp = now + 1, no tolerance', { clockToleranceSeconds: 0 }, (c) => ({ exp: c.s + 1 }), 'accepted'],
    ['exp = now - 1, no tolerance', { clockToleranceSeconds: 0 }, (c) => ({ exp: c.s - 1 }), 'jwt-expired'],
    ['exp = now - 1, 30 s tolerance', { clockToleranceSeconds: 30 }, (c) => ({ exp: c.s - 1 }), 'accepted'],
    ['exp = now - 30, 30 s tolerance', { clockToleranceSeconds: 30 }, (c) => ({ exp: c.s - 30 }), 'jwt-expired'],
    ['exp = now - 29, default tolerance (30 s)', {}, (c) => ({ exp: c.s - 29 }), 'accepted'],
    ['exp far in the past', {}, (c) => ({ exp: c.s - 86_400 }), 'jwt-expired'],
    ['missing exp', {}, () => ({ exp: undefined }), 'jwt-claim-invalid'],
    ['string exp', {}, () => ({ exp: 'tomorrow' }), 'jwt-claim-invalid'],
    ['null exp', {}, () => ({ exp: null }), 'jwt-claim-invalid'],
    ['nbf beyond tolerance', {}, (c) => ({ nbf: c.s + 31 }), 'jwt-not-yet-valid'],
    ['nbf at the tolerance edge', {}, (c) => ({ nbf: c.s + 30 }), 'accepted'],
    ['nbf = now + 1, no tolerance', { clockToleranceSeconds: 0 }, (c) => ({ nbf: c.s + 1 }), 'jwt-not-yet-valid'],
    ['nbf not a number', {}, () => ({ nbf: 'now' }), 'jwt-claim-invalid'],
    ['iat in the future beyond tolerance', {}, (c) => ({ iat: c.s + 120 }), 'jwt-claim-invalid'],
    ['iat in the future within tolerance', {}, (c) => ({ iat: c.s + 20 }), 'accepted'],
    ['iat not a number', {}, () => ({ iat: 'yesterday' }), 'jwt-claim-invalid'],
    ['no iat without maxTokenAge', {}, () => ({ iat: undefined }), 'accepted'],
    ['maxTokenAge: fresh', { maxTokenAgeSeconds: 3600, clockToleranceSeconds: 0 }, (c) => ({ iat: c.s - 10 }), 'accepted'],
    ['maxTokenAge: age = exp - iat = max (tolerance covers exp = now)', { maxTokenAgeSeconds: 3600, clockToleranceSeconds: 30 }, (c) => ({ iat: c.s - 3600, exp: c.s }), 'accepted'],
    ['maxTokenAge: age = max + tolerance + 1', { maxTokenAgeSeconds: 3600, clockToleranceSeconds: 30 }, (c) => ({ iat: c.s - 3631, exp: c.s + 10 }), 'jwt-too-old'],
    ['maxTokenAge: now - iat over max', { maxTokenAgeSeconds: 3600, clockToleranceSeconds: 0 }, (c) => ({ iat: c.s - 3601, exp: c.s + 60 }), 'jwt-too-old'],
    ['maxTokenAge: exp - iat over max', { maxTokenAgeSeconds: 3600, clockToleranceSeconds: 0 }, (c) => ({ iat: c.s, exp: c.s + 3601 }), 'jwt-too-old'],
    ['maxTokenAge: exp - iat = max', { maxTokenAgeSeconds: 3600, clockToleranceSeconds: 0 }, (c) => ({ iat: c.s, exp: c.s + 3600 }), 'accepted'],
    ['maxTokenAge: iat missing', { maxTokenAgeSeconds: 3600 }, () => ({ iat: undefined }), 'jwt-claim-invalid'],
    ['maxTokenAge: iat in the future', { maxTokenAgeSeconds: 3600, clockToleranceSeconds: 0 }, (c) => ({ iat: c.s + 60 }), 'jwt-claim-invalid'],
    ['wrong iss', {}, () => ({ iss: 'https://evil.test/' }), 'jwt-unknown-issuer'],
    ['iss without the trailing slash', {}, () => ({ iss: 'https://idp.test' }), 'jwt-unknown-issuer'],
    ['iss with a doubled slash', {}, () => ({ iss: 'https://idp.test//' }), 'jwt-unknown-issuer'],
    ['iss in upper case', {}, () => ({ iss: 'HTTPS://IDP.TEST/' }), 'jwt-unknown-issuer'],
    ['iss with whitespace', {}, () => ({ iss: ' https://idp.test/' }), 'jwt-unknown-issuer'],
    ['missing iss', {}, () => ({ iss: undefined }), 'jwt-unknown-issuer'],
    ['iss a number', {}, () => ({ iss: 5 }), 'jwt-unknown-issuer'],
    ['iss an array', {}, () => ({ iss: [ISS] }), 'jwt-unknown-issuer'],
    ['wrong aud', {}, () => ({ aud: 'other' }), 'jwt-claim-invalid'],
    ['aud differing in case', {}, () => ({ aud: 'API' }), 'jwt-claim-invalid'],
    ['aud array without ours', {}, () => ({ aud: ['x', 'y'] }), 'jwt-claim-invalid'],
    ['aud empty array', {}, () => ({ aud: [] }), 'jwt-claim-invalid'],
    ['aud array with ours', {}, () => ({ aud: ['x', 'api2'] }), 'accepted'],
    ['missing aud', {}, () => ({ aud: undefined }), 'jwt-claim-invalid'],
    ['aud a number', {}, () => ({ aud: 1 }), 'jwt-claim-invalid'],
    ['missing sub', {}, () => ({ sub: undefined }), 'jwt-no-sub'],
    ['empty sub', {}, () => ({ sub: '' }), 'jwt-no-sub'],
    ['numeric sub', {}, () => ({ sub: 42 }), 'jwt-no-sub'],
    ['null sub', {}, () => ({ sub: null }), 'jwt-no-sub'],
    ['array sub', {}, () => ({ sub: ['alice'] }), 'jwt-no-sub'],
    ['sub of 256 characters', {}, () => ({ sub: 's'.repeat(256) }), 'jwt-no-sub'],
    ['sub of 255 characters', {}, () => ({ sub: 's'.repeat(255) }), 'accepted'],
  ];
  it.each(cases)('%s', async (_n, config, claims, expected) => {
    const { v, clock } = verifierWith(config);
    expect(await outcome(v.verify(await token(clock, claims(clock))))).toBe(expected);
  });

  it.each([
    ['exp', (s: number) => `{"iss":"${ISS}","aud":"api","sub":"a","exp":1e400}`, 'jwt-claim-invalid'],
    ['iat', (s: number) => `{"iss":"${ISS}","aud":"api","sub":"a","exp":${s + 60},"iat":1e400}`, 'jwt-claim-invalid'],
    ['nbf', (s: number) => `{"iss":"${ISS}","aud":"api","sub":"a","exp":${s + 60},"nbf":1e400}`, 'jwt-not-yet-valid'],
    ['exp (negative)', () => `{"iss":"${ISS}","aud":"api","sub":"a","exp":-1e400}`, 'jwt-expired'],
    ['exp (beyond safe integers)', (s: number) => `{"iss":"${ISS}","aud":"api","sub":"a","exp":123456789012345678901234567890,"iat":${s}}`, 'accepted'],
  ])('huge numbers in %s are handled (Infinity never means "never expires")', async (_n, payload, expected) => {
    const { v, clock } = verifierWith();
    expect(await outcome(v.verify(await craft({ alg: 'RS256', kid: 'rsa' }, payload(clock.s))))).toBe(expected);
  });

  it('typ is enforced when configured (at+jwt vs JWT)', async () => {
    const { v, clock } = verifierWith({ typ: 'at+jwt' });
    expect(await outcome(v.verify(await token(clock, {}, { typ: 'JWT' })))).toBe('jwt-typ');
    expect(await outcome(v.verify(await token(clock)))).toBe('jwt-typ');
    expect(await outcome(v.verify(await token(clock, {}, { typ: 'jwt' })))).toBe('jwt-typ');
    expect(await outcome(v.verify(await token(clock, {}, { typ: 5 })))).toBe('jwt-typ');
    expect(await outcome(v.verify(await token(clock, {}, { typ: 'at+jwt' })))).toBe('accepted');
    // A media type: the application/ prefix and case do not matter.
    expect(await outcome(v.verify(await token(clock, {}, { typ: 'application/at+jwt' })))).toBe('accepted');
    expect(await outcome(v.verify(await token(clock, {}, { typ: 'AT+JWT' })))).toBe('accepted');
  });

  it('without a configured typ any typ passes', async () => {
    const { v, clock } = verifierWith();
    expect(await outcome(v.verify(await token(clock, {}, { typ: 'at+jwt' })))).toBe('accepted');
  });
});

describe('email, groups and user id', () => {
  async function verified(config: Record<string, unknown>, claims: Record<string, unknown>): Promise<VerifiedJwt> {
    const { v, clock } = verifierWith(config);
    return v.verify(await token(clock, claims));
  }

  it.each([
    ['verified email', {}, { email: 'a@x.test', email_verified: true }, { email: 'a@x.test', emailVerified: true }],
    ['unverified email', {}, { email: 'a@x.test', email_verified: false }, { email: 'a@x.test', emailVerified: false }],
    ['email_verified as the string "true"', {}, { email: 'a@x.test', email_verified: 'true' }, { email: 'a@x.test', emailVerified: false }],
    ['email_verified as 1', {}, { email: 'a@x.test', email_verified: 1 }, { email: 'a@x.test', emailVerified: false }],
    ['no email_verified', {}, { email: 'a@x.test' }, { email: 'a@x.test', emailVerified: false }],
    ['trustEmail without email_verified', { trustEmail: true }, { email: 'a@x.test' }, { email: 'a@x.test', emailVerified: true }],
    ['email_verified but no email', {}, { email_verified: true }, { email: undefined, emailVerified: false }],
    ['email an array', {}, { email: ['a@x.test'], email_verified: true }, { email: undefined, emailVerified: false }],
    ['email an object', {}, { email: { toString: 'a@x.test' }, email_verified: true }, { email: undefined, emailVerified: false }],
    ['email a number', { trustEmail: true }, { email: 7 }, { email: undefined, emailVerified: false }],
    ['custom emailClaim', { emailClaim: 'upn' }, { upn: 'u@x.test', email: 'other@x.test', email_verified: true }, { email: 'u@x.test', emailVerified: true }],
  ] as [string, Record<string, unknown>, Record<string, unknown>, Partial<VerifiedJwt>][])('%s', async (_n, config, claims, expected) => {
    const r = await verified(config, claims);
    expect(r.email).toBe(expected.email);
    expect(r.emailVerified).toBe(expected.emailVerified);
  });

  it.each([
    ['a string', 'admins', undefined],
    ['numbers', [1, 2], undefined],
    ['mixed (all or nothing)', ['admins', 1], undefined],
    ['an object', { 0: 'admins' }, undefined],
    ['nested arrays', [['admins']], undefined],
    ['strings', ['a', 'b'], ['a', 'b']],
    ['empty', [], []],
  ])('groups as %s', async (_n, groups, expected) => {
    const r = await verified({}, { groups });
    expect(r.groups).toEqual(expected);
  });

  it('a custom groupsClaim is read, the default one ignored', async () => {
    const r = await verified({ groupsClaim: 'roles' }, { roles: ['r1'], groups: ['g1'] });
    expect(r.groups).toEqual(['r1']);
  });

  it('userIdPrefix namespaces the issuer\'s users', async () => {
    const r = await verified({ userIdPrefix: 'idp|' }, { sub: 'root' });
    expect(r).toMatchObject({ userId: 'idp|root', sub: 'root' });
  });
});

describe('structural junk and size', () => {
  it.each([
    ['empty', ''],
    ['one part', 'abc'],
    ['two parts', 'a.b'],
    ['four parts', 'a.b.c.d'],
    ['five parts (JWE-shaped)', 'a.b.c.d.e'],
    ['only dots', '..'],
    ['not base64url', '%%%.%%%.%%%'],
    ['standard base64 padding', 'eyJhbGciOiJSUzI1NiJ9==.e30=.x'],
    ['whitespace inside', 'a b.c.d'],
    ['a Bearer prefix', 'Bearer a.b.c'],
    ['header not JSON', `${b64('x')}.${b64({ iss: ISS })}.x`],
    ['header a JSON array', `${b64([{ alg: 'RS256' }])}.${b64({ iss: ISS })}.x`],
    ['header a JSON string', `${b64('"RS256"')}.${b64({ iss: ISS })}.x`],
    ['header null', `${b64('null')}.${b64({ iss: ISS })}.x`],
    ['payload an array', `${b64({ alg: 'RS256', kid: 'rsa' })}.${b64([ISS])}.x`],
    ['payload a string', `${b64({ alg: 'RS256', kid: 'rsa' })}.${b64('"s"')}.x`],
    ['payload a number', `${b64({ alg: 'RS256', kid: 'rsa' })}.${b64('42')}.x`],
    ['payload null', `${b64({ alg: 'RS256', kid: 'rsa' })}.${b64('null')}.x`],
    ['payload not UTF-8', `${b64({ alg: 'RS256', kid: 'rsa' })}.${Buffer.from([0xff, 0xfe, 0x7b, 0x7d]).toString('base64url')}.x`],
    ['payload truncated JSON', `${b64({ alg: 'RS256', kid: 'rsa' })}.${b64(`{"iss":"${ISS}"`)}.x`],
  ])('%s is jwt-malformed', async (_n, t) => {
    const { v } = verifierWith();
    expect(await outcome(v.verify(t))).toBe('jwt-malformed');
  });

  it('a non-string token is malformed, never a crash', async () => {
    const { v } = verifierWith();
    for (const t of [undefined, null, 42, {}, ['a.b.c']]) expect(await outcome(v.verify(t as never))).toBe('jwt-malformed');
  });

  it('a valid token with leading or trailing whitespace is malformed (no trimming here)', async () => {
    const { v, clock } = verifierWith();
    const t = await token(clock);
    expect(await outcome(v.verify(` ${t}`))).toBe('jwt-malformed');
    expect(await outcome(v.verify(`${t}\n`))).toBe('jwt-malformed');
  });

  it('over 8 KB is refused before parsing; a signed oversize token too', async () => {
    const { v, clock } = verifierWith();
    expect(await outcome(v.verify('a'.repeat(MAX_JWT_LENGTH + 1)))).toBe('jwt-too-large');
    expect(await outcome(v.verify('a'.repeat(MAX_JWT_LENGTH)))).toBe('jwt-malformed');
    expect(await outcome(v.verify('.'.repeat(1_000_000)))).toBe('jwt-too-large');
    expect(await outcome(v.verify(await token(clock, { pad: 'p'.repeat(7000) })))).toBe('jwt-too-large');
    expect(await outcome(v.verify(await token(clock, { pad: 'p'.repeat(4000) })))).toBe('accepted');
  });

  it('an unknown issuer is refused before anything about its key is looked at', async () => {
    const { v, clock } = verifierWith();
    const t = await craft({ alg: 'HS256', jku: 'https://evil.test/' }, claimsAt(clock, { iss: 'https://evil.test/' }));
    expect(await outcome(v.verify(t))).toBe('jwt-unknown-issuer');
  });

  it('error messages never carry the token', async () => {
    const { v, clock } = verifierWith({ clockToleranceSeconds: 0 });
    const tokens = [
      await token(clock, { exp: clock.s - 1 }),
      await token(clock, { aud: 'x' }),
      await token(clock, { sub: '' }),
      await token(clock, {}, { kid: 'nope' }),
      await token(clock, {}, {}, otherRsa),
      await token(clock, { iss: 'https://evil.test/' }),
      `${(await token(clock)).slice(0, -3)}%%%`,
    ];
    for (const t of tokens) {
      const err = await v.verify(t).then(() => undefined, (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(Unauthenticated);
      const [h, p, s] = t.split('.');
      for (const part of [t, h, p, s].filter((x): x is string => !!x && x.length > 8)) expect(err!.message).not.toContain(part);
      expect(JSON.stringify(err)).not.toContain(p!);
    }
  });
});

describe('key source failures fail closed on their own path', () => {
  it('a remote key set that cannot be fetched is a KeySourceError, not a 401', async () => {
    const clock = new Clock();
    const fetchDown = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    const v = new JwtVerifier({ issuers: parseIssuers(JSON.stringify([{ issuer: ISS, audience: 'api', jwksUri: 'https://idp.test/jwks' }])), fetch: fetchDown, now: clock.now });
    const err = await v.verify(await token(clock)).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(KeySourceError);
    expect(err).not.toBeInstanceOf(Unauthenticated);
    expect((err as KeySourceError).code).toBe('jwks-unreachable');
  });

  it('an unknown issuer or a forbidden header never reaches the key source', async () => {
    const clock = new Clock();
    let calls = 0;
    const spy = (async () => {
      calls++;
      return new Response('{"keys":[]}', { status: 200 });
    }) as typeof fetch;
    const v = new JwtVerifier({ issuers: parseIssuers(JSON.stringify([{ issuer: ISS, audience: 'api', jwksUri: 'https://idp.test/jwks' }])), fetch: spy, now: clock.now });
    expect(await outcome(v.verify(await token(clock, { iss: 'https://evil.test/' })))).toBe('jwt-unknown-issuer');
    expect(await outcome(v.verify(await token(clock, {}, { jku: 'https://evil.test/jwks' })))).toBe('jwt-forbidden-header');
    expect(await outcome(v.verify(await token(clock, {}, { alg: 'ES256' }, rsa)))).toBe('jwt-alg-not-allowed');
    expect(calls).toBe(0);
  });
});


import type { CryptoKey } from 'jose';
import { createHmac, createPrivateKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseIssuers, type IssuerConfig } from '../../core/config/issuers';
import { Unauthenticated } from '../../core/errors';
import { JwtVerifier } from '../../core/identity/jwt';
import { TestClock } from '../support/runtime';

const ISS = 'https://idp.test/';
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

let rsa: { publicKey: CryptoKey; privateKey: CryptoKey; jwk: JWK; pem: string };
let ec: { publicKey: CryptoKey; privateKey: CryptoKey; jwk: JWK };
let clock: TestClock;
let config: IssuerConfig[];
let verifier: JwtVerifier;

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    if (err instanceof Unauthenticated) return err.code;
    throw err;
  }
}

function signed(claims: Record<string, unknown>, header: Record<string, unknown> = {}) {
  const now = clock.seconds;
  return new SignJWT({ iss: ISS, aud: 'api', sub: 'alice', iat: now, exp: now + 600, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'rsa', ...header } as never)
    .sign(rsa.privateKey);
}

beforeAll(async () => {
  clock = new TestClock();
  const r = await generateKeyPair('RS256', { extractable: true });
  rsa = { ...r, jwk: { ...(await exportJWK(r.publicKey)), kid: 'rsa', alg: 'RS256' }, pem: await exportSPKI(r.publicKey) };
  const e = await generateKeyPair('ES256', { extractable: true });
  ec = { ...e, jwk: { ...(await exportJWK(e.publicKey)), kid: 'ec', alg: 'ES256' } };
  config = parseIssuers(JSON.stringify([{ issuer: ISS, audience: ['api', 'api2'], jwks: { keys: [rsa.jwk, ec.jwk] }, algorithms: ['RS256', 'ES256'], clockToleranceSeconds: 30 }]));
  verifier = new JwtVerifier({ issuers: config, now: clock.now });
});

describe('JWT forgery and algorithm confusion', () => {
  it('accepts a well-formed token', async () => {
    const v = await verifier.verify(await signed({ email: 'a@x.test', email_verified: true, groups: ['g1'] }));
    expect(v).toMatchObject({ userId: 'alice', sub: 'alice', email: 'a@x.test', emailVerified: true, groups: ['g1'], issuer: ISS });
  });

  it.each(['none', 'None', 'NONE', 'nOnE'])('alg %s is refused', async (alg) => {
    const now = clock.seconds;
    const body = `${b64({ alg, kid: 'rsa' })}.${b64({ iss: ISS, aud: 'api', sub: 'root', exp: now + 600 })}`;
    for (const token of [`${body}.`, `${body}.${b64('x')}`]) expect(await code(verifier.verify(token))).toBe('jwt-alg-not-allowed');
  });

  it('HS256 signed with the RSA public key (RS/HS confusion) is refused', async () => {
    const now = clock.seconds;
    const body = `${b64({ alg: 'HS256', kid: 'rsa' })}.${b64({ iss: ISS, aud: 'api', sub: 'root', exp: now + 600 })}`;
    for (const secret of [rsa.pem, JSON.stringify(rsa.jwk), rsa.jwk.n!]) {
      const sig = createHmac('sha256', secret).update(body).digest('base64url');
      expect(await code(verifier.verify(`${body}.${sig}`))).toBe('jwt-alg-not-allowed');
    }
  });

  it.each(['jwk', 'jku', 'x5u', 'x5c', 'crit'])('a %s header (embedded or remote keys) is refused', async (h) => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const attackerJwk = await exportJWK(publicKey);
    const value = h === 'jwk' ? attackerJwk : h === 'x5c' ? ['MIIB'] : h === 'crit' ? ['exp'] : 'https://evil.test/jwks.json';
    const token = await new SignJWT({ iss: ISS, aud: 'api', sub: 'root', exp: clock.seconds + 600 })
      .setProtectedHeader({ alg: 'RS256', [h]: value } as never)
      .sign(privateKey)
      .catch(async () => {
        // jose refuses to sign some headers (crit): craft it by hand.
        const body = `${b64({ alg: 'RS256', [h]: value })}.${b64({ iss: ISS, aud: 'api', sub: 'root', exp: clock.seconds + 600 })}`;
        return `${body}.${b64('sig')}`;
      });
    expect(await code(verifier.verify(token))).toBe('jwt-forbidden-header');
  });

  it.each(['../../etc/passwd', "' OR 1=1 --", 'x'.repeat(5000), 'unknown', '', '\u0000'])('kid injection %j finds no key', async (kid) => {
    const c = await code(verifier.verify(await signed({}, { kid })));
    expect(['jwt-unknown-key', 'jwt-too-large', 'jwt-bad-signature']).toContain(c);
  });

  it('an all-zero ECDSA signature (CVE-2022-21449 style) is refused', async () => {
    const body = `${b64({ alg: 'ES256', kid: 'ec' })}.${b64({ iss: ISS, aud: 'api', sub: 'root', exp: clock.seconds + 600 })}`;
    const zero = Buffer.alloc(64).toString('base64url');
    expect(await code(verifier.verify(`${body}.${zero}`))).toBe('jwt-bad-signature');
  });

  it('an algorithm not allowed for the issuer, or the wrong one for the key, is refused', async () => {
    const ps = await new SignJWT({ iss: ISS, aud: 'api', sub: 'root', exp: clock.seconds + 600 }).setProtectedHeader({ alg: 'PS256', kid: 'rsa' }).sign(rsa.privateKey).catch(() => undefined);
    if (ps) expect(await code(verifier.verify(ps))).toBe('jwt-alg-not-allowed');
    // ES256 header but signed by the RSA key, pointing at the EC kid.
    const body = `${b64({ alg: 'ES256', kid: 'ec' })}.${b64({ iss: ISS, aud: 'api', sub: 'root', exp: clock.seconds + 600 })}`;
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const sig = nodeSign('sha256', Buffer.from(body), privateKey).toString('base64url');
    expect(await code(verifier.verify(`${body}.${sig}`))).toBe('jwt-bad-signature');
    // RS256 header naming the EC key.
    expect(await code(verifier.verify(await signed({}, { kid: 'ec' })))).toBe('jwt-unknown-key');
    void createPrivateKey;
  });

  it('a token signed by another key for the same issuer is refused', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const t = await new SignJWT({ iss: ISS, aud: 'api', sub: 'root', exp: clock.seconds + 600 }).setProtectedHeader({ alg: 'RS256', kid: 'rsa' }).sign(privateKey);
    expect(await code(verifier.verify(t))).toBe('jwt-bad-signature');
  });

  it('a tampered payload is refused', async () => {
    const t = await signed({});
    const [h, , s] = t.split('.');
    const forged = `${h}.${b64({ iss: ISS, aud: 'api', sub: 'root', exp: clock.seconds + 600 })}.${s}`;
    expect(await code(verifier.verify(forged))).toBe('jwt-bad-signature');
  });
});

describe('claims and clock edges', () => {
  it.each([
    ['exp = now', () => ({ exp: clock.seconds - 31 }), 'jwt-expired'],
    ['exp in the past beyond tolerance', () => ({ exp: clock.seconds - 31 }), 'jwt-expired'],
    ['exp in the past within tolerance', () => ({ exp: clock.seconds - 29 }), 'accepted'],
    ['nbf beyond tolerance', () => ({ nbf: clock.seconds + 31 }), 'jwt-not-yet-valid'],
    ['nbf within tolerance', () => ({ nbf: clock.seconds + 29 }), 'accepted'],
    ['iat in the future beyond tolerance', () => ({ iat: clock.seconds + 120 }), 'jwt-claim-invalid'],
    ['missing exp', () => ({ exp: undefined }), 'jwt-claim-invalid'],
    ['non-numeric exp', () => ({ exp: 'tomorrow' }), 'jwt-claim-invalid'],
    ['wrong iss (trailing slash)', () => ({ iss: 'https://idp.test' }), 'jwt-unknown-issuer'],
    ['wrong aud', () => ({ aud: 'other' }), 'jwt-claim-invalid'],
    ['aud array without ours', () => ({ aud: ['x', 'y'] }), 'jwt-claim-invalid'],
    ['aud array with ours', () => ({ aud: ['x', 'api2'] }), 'accepted'],
    ['missing sub', () => ({ sub: undefined }), 'jwt-no-sub'],
    ['empty sub', () => ({ sub: '' }), 'jwt-no-sub'],
    ['numeric sub', () => ({ sub: 42 }), 'jwt-malformed'],
    ['iss not a string', () => ({ iss: 5 }), 'jwt-unknown-issuer'],
  ] as [string, () => Record<string, unknown>, string][])('%s', async (_n, claims, expected) => {
    const c = claims();
    const token = await signed(c).catch(async () => {
      // jose validates some claim types while signing: craft by hand.
      const now = clock.seconds;
      const payload = { iss: ISS, aud: 'api', sub: 'alice', iat: now, exp: now + 600, ...c };
      const body = `${b64({ alg: 'RS256', kid: 'rsa' })}.${b64(payload)}`;
      const key = createPrivateKey({ key: (await exportJWK(rsa.privateKey)) as never, format: 'jwk' });
      return `${body}.${nodeSign('sha256', Buffer.from(body), key).toString('base64url')}`;
    });
    const got = await code(verifier.verify(token));
    if (expected === 'jwt-malformed') expect(got).not.toBe('accepted');
    else expect(got).toBe(expected);
  });

  it('groups and email of the wrong types are dropped, not trusted', async () => {
    const v = await verifier.verify(await signed({ email: ['a@x'], email_verified: 'true', groups: 'admins' }));
    expect(v.email).toBeUndefined();
    expect(v.emailVerified).toBe(false);
    expect(v.groups).toBeUndefined();
    const v2 = await verifier.verify(await signed({ email: 'b@x.test', email_verified: 'true' }));
    expect(v2.emailVerified).toBe(false);
  });

  it('maxTokenAgeSeconds bounds now - iat and exp - iat, and requires iat', async () => {
    const cfg = parseIssuers(JSON.stringify([{ issuer: ISS, audience: 'api', jwks: { keys: [rsa.jwk] }, maxTokenAgeSeconds: 3600, clockToleranceSeconds: 0 }]));
    const v = new JwtVerifier({ issuers: cfg, now: clock.now });
    const now = clock.seconds;
    expect(await code(v.verify(await signed({ iat: now - 10, exp: now + 600 })))).toBe('accepted');
    expect(await code(v.verify(await signed({ iat: now - 4000, exp: now + 600 })))).toBe('jwt-too-old');
    expect(await code(v.verify(await signed({ iat: now, exp: now + 7200 })))).toBe('jwt-too-old');
    expect(await code(v.verify(await signed({ iat: undefined })))).toBe('jwt-claim-invalid');
  });

  it('typ is enforced when configured (at+jwt vs JWT)', async () => {
    const cfg = parseIssuers(JSON.stringify([{ issuer: ISS, audience: 'api', jwks: { keys: [rsa.jwk] }, typ: 'at+jwt' }]));
    const v = new JwtVerifier({ issuers: cfg, now: clock.now });
    expect(await code(v.verify(await signed({}, { typ: 'JWT' })))).toBe('jwt-typ');
    expect(await code(v.verify(await signed({})))).toBe('jwt-typ');
    expect(await code(v.verify(await signed({}, { typ: 'at+jwt' })))).toBe('accepted');
  });

  it('userIdPrefix namespaces users of an issuer', async () => {
    const cfg = parseIssuers(JSON.stringify([{ issuer: ISS, audience: 'api', jwks: { keys: [rsa.jwk] }, userIdPrefix: 'idp|' }]));
    const v = new JwtVerifier({ issuers: cfg, now: clock.now });
    expect((await v.verify(await signed({ sub: 'root' }))).userId).toBe('idp|root');
  });
});

describe('structural junk and size', () => {
  it.each([
    ['empty', ''], ['two parts', 'a.b'], ['four parts', 'a.b.c.d'], ['not base64', '%%%.%%%.%%%'], ['header not JSON', `${b64('x')}.${b64({})}.x`],
    ['payload array', `${b64({ alg: 'RS256' })}.${b64([1, 2])}.x`], ['payload string', `${b64({ alg: 'RS256' })}.${b64('"s"')}.x`],
    ['huge numbers', `${b64({ alg: 'RS256', kid: 'rsa' })}.${b64('{"iss":"https://idp.test/","exp":1e400}')}.x`],
    ['oversize', 'a'.repeat(9000)], ['whitespace', ' . . '],
  ])('%s is a 401, never a crash', async (_n, token) => {
    const c = await code(verifier.verify(token));
    expect(c).not.toBe('accepted');
    expect(c).toMatch(/^jwt-/);
  });
});

describe('expiry', () => {
  it('a token is refused past exp (and its tolerance), however often it was accepted before', async () => {
    const c = new TestClock();
    const v = new JwtVerifier({ issuers: config, now: c.now });
    const now = c.seconds;
    const t = await new SignJWT({ iss: ISS, aud: 'api', sub: 'alice', exp: now + 60 }).setProtectedHeader({ alg: 'RS256', kid: 'rsa' }).sign(rsa.privateKey);
    expect(await code(v.verify(t))).toBe('accepted');
    c.advance(59);
    expect(await code(v.verify(t))).toBe('accepted');
    c.advance(2);
    // Past exp (and within tolerance the cache must still not extend it beyond exp + tolerance).
    c.advance(30);
    expect(await code(v.verify(t))).toBe('jwt-expired');
  });

});

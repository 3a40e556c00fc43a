import { createSign, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { compactVerify, createLocalJWKSet, exportJWK, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { ASYMMETRIC_ALGS, parseIssuers, type JwsAlg } from '../../core/config/issuers';
import { JwtVerifier } from '../../core/identity/jwt';

/**
 * Our synchronous `node:crypto` signature check against jose's own verification, on the
 * same tokens and keys: both must accept and reject exactly the same tokens, for every
 * algorithm, including tampered tokens, wrong keys, wrong curves, wrong key types, and
 * ECDSA signatures in DER form or of the wrong length.
 */
const ISS = 'https://idp.test/';
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

interface Pair {
  name: string;
  privateKey: KeyObject;
  jwk: JWK;
}

type KeySpec = { type: 'rsa'; bits: number } | { type: 'rsa-pss' } | { type: 'ec'; curve: string } | { type: 'ed25519' } | { type: 'ed448' };

function makePair(name: string, spec: KeySpec): Promise<Pair> {
  const kp =
    spec.type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: spec.bits })
      : spec.type === 'rsa-pss'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : spec.type === 'ec'
          ? generateKeyPairSync('ec', { namedCurve: spec.curve })
          : spec.type === 'ed25519'
            ? generateKeyPairSync('ed25519')
            : generateKeyPairSync('ed448');
  return exportJWK(kp.publicKey).then((jwk) => ({ name, privateKey: kp.privateKey, jwk: { ...jwk, kid: name } }));
}

const DIGEST: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

/** Signs `input` for `alg` with any key (so tests can sign with the wrong one); `der` keeps ECDSA's DER form. */
function signWith(alg: string, key: KeyObject, input: string, der = false): Buffer {
  const data = Buffer.from(input);
  const digest = DIGEST[alg.slice(2)] ?? 'sha256';
  try {
    if (alg === 'EdDSA') return nodeSign(null, data, key);
    if (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448') return nodeSign(null, data, key);
    if (alg.startsWith('PS')) return nodeSign(digest, data, { key, padding: 6, saltLength: -1 });
    if (alg.startsWith('ES') || key.asymmetricKeyType === 'ec') return nodeSign(digest, data, { key, dsaEncoding: der ? 'der' : 'ieee-p1363' });
    const s = createSign(digest);
    s.update(data);
    return s.sign(key);
  } catch {
    return Buffer.from('not a signature');
  }
}

let pairs: Record<string, Pair>;

beforeAll(async () => {
  const list = await Promise.all([
    makePair('rsa-a', { type: 'rsa', bits: 2048 }),
    makePair('rsa-b', { type: 'rsa', bits: 2048 }),
    makePair('rsa-3072', { type: 'rsa', bits: 3072 }),
    makePair('p256-a', { type: 'ec', curve: 'prime256v1' }),
    makePair('p256-b', { type: 'ec', curve: 'prime256v1' }),
    makePair('p384', { type: 'ec', curve: 'secp384r1' }),
    makePair('p521', { type: 'ec', curve: 'secp521r1' }),
    makePair('ed25519-a', { type: 'ed25519' }),
    makePair('ed25519-b', { type: 'ed25519' }),
    makePair('ed448', { type: 'ed448' }),
  ]);
  pairs = Object.fromEntries(list.map((p) => [p.name, p]));
});

/** The natural signing key of an algorithm (and a second one of the same kind). */
const natural: Record<JwsAlg, [string, string]> = {
  RS256: ['rsa-a', 'rsa-b'], RS384: ['rsa-a', 'rsa-b'], RS512: ['rsa-3072', 'rsa-b'],
  PS256: ['rsa-a', 'rsa-b'], PS384: ['rsa-3072', 'rsa-b'], PS512: ['rsa-a', 'rsa-b'],
  ES256: ['p256-a', 'p256-b'], ES384: ['p384', 'p256-a'], ES512: ['p521', 'p384'],
  EdDSA: ['ed25519-a', 'ed25519-b'],
};

interface Case {
  name: string;
  token: string;
  /** The key the verifier is configured with. */
  key: string;
}

function casesFor(alg: JwsAlg): Case[] {
  const [mine, other] = natural[alg];
  const claims = { iss: ISS, aud: 'api', sub: 'alice', iat: NOW / 1000, exp: NOW / 1000 + 600 };
  const header = (kid: string, extra: Record<string, unknown> = {}) => b64({ alg, kid, ...extra });
  const tok = (kid: string, signer: string, mutate?: (sig: Buffer) => Buffer, der = false, payload = b64(claims)) => {
    const input = `${header(kid)}.${payload}`;
    let sig = signWith(alg, pairs[signer]!.privateKey, input, der);
    if (mutate) sig = mutate(Buffer.from(sig));
    return `${input}.${sig.toString('base64url')}`;
  };
  const flip = (i: number) => (s: Buffer) => {
    if (s.length > 0) s[i % s.length]! ^= 0x01;
    return s;
  };
  const out: Case[] = [
    { name: 'valid', token: tok(mine, mine), key: mine },
    { name: 'signed by another key of the same kind', token: tok(mine, other), key: mine },
    { name: 'first signature byte flipped', token: tok(mine, mine, flip(0)), key: mine },
    { name: 'last signature byte flipped', token: tok(mine, mine, flip(-1 >>> 0)), key: mine },
    { name: 'signature truncated by one byte', token: tok(mine, mine, (s) => s.subarray(0, s.length - 1)), key: mine },
    { name: 'signature extended by one byte', token: tok(mine, mine, (s) => Buffer.concat([s, Buffer.from([0])])), key: mine },
    { name: 'empty signature', token: tok(mine, mine, () => Buffer.alloc(0)), key: mine },
    { name: 'payload tampered after signing', token: (() => { const t = tok(mine, mine); const [h, , s] = t.split('.'); return `${h}.${b64({ ...claims, sub: 'root' })}.${s}`; })(), key: mine },
    { name: 'verifier holds another key of the same kind', token: tok(other, mine), key: other },
  ];
  if (alg.startsWith('ES')) {
    out.push({ name: 'ECDSA signature in DER form', token: tok(mine, mine, undefined, true), key: mine });
    out.push({ name: 'signed on another curve, verified with the named key', token: tok(mine, alg === 'ES256' ? 'p384' : 'p256-a'), key: mine });
    out.push({ name: 'verifier key on the wrong curve', token: tok(alg === 'ES256' ? 'p384' : 'p256-a', alg === 'ES256' ? 'p384' : 'p256-a'), key: alg === 'ES256' ? 'p384' : 'p256-a' });
    out.push({ name: 'signature of zeros', token: tok(mine, mine, (s) => Buffer.alloc(s.length)), key: mine });
  }
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    out.push({ name: 'verifier holds an EC key', token: tok('p256-a', 'p256-a'), key: 'p256-a' });
    out.push({ name: 'verifier holds an Ed25519 key', token: tok('ed25519-a', 'ed25519-a'), key: 'ed25519-a' });
    // The same RSA key, signed with the other RSA padding.
    const twin = alg.startsWith('RS') ? `PS${alg.slice(2)}` : `RS${alg.slice(2)}`;
    const input = `${header(mine)}.${b64(claims)}`;
    out.push({ name: `signed with ${twin} padding`, token: `${input}.${signWith(twin, pairs[mine]!.privateKey, input).toString('base64url')}`, key: mine });
    if (alg.startsWith('PS')) {
      // RFC 7518 §3.5: the salt is as long as the digest; other salt lengths are not this algorithm.
      for (const saltLength of [0, 20, 100]) {
        const sig = nodeSign(DIGEST[alg.slice(2)]!, Buffer.from(input), { key: pairs[mine]!.privateKey, padding: 6, saltLength });
        out.push({ name: `PSS salt of ${saltLength} bytes`, token: `${input}.${sig.toString('base64url')}`, key: mine });
      }
    }
  }
  if (alg === 'EdDSA') {
    out.push({ name: 'Ed448 key and signature', token: tok('ed448', 'ed448'), key: 'ed448' });
    out.push({ name: 'verifier holds an RSA key', token: tok('rsa-a', 'rsa-a'), key: 'rsa-a' });
  }
  return out;
}

async function oursAccepts(alg: JwsAlg, c: Case): Promise<boolean> {
  const jwk = { ...pairs[c.key]!.jwk, alg, use: 'sig' };
  let config;
  try {
    config = parseIssuers(JSON.stringify([{ issuer: ISS, audience: 'api', algorithms: [alg], jwks: { keys: [jwk] } }]));
  } catch {
    return false; // the key cannot serve the algorithm: refused at configuration
  }
  const v = new JwtVerifier({ issuers: config, now: () => NOW });
  try {
    await v.verify(c.token);
    return true;
  } catch (err) {
    if ((err as { status?: number }).status !== 401) throw err;
    return false;
  }
}

async function joseAccepts(alg: JwsAlg, c: Case): Promise<boolean> {
  const jwk = { ...pairs[c.key]!.jwk, alg, use: 'sig' };
  try {
    await compactVerify(c.token, createLocalJWKSet({ keys: [jwk] }), { algorithms: [alg] });
    return true;
  } catch {
    return false;
  }
}

describe('signatures: node:crypto agrees with jose on every algorithm', () => {
  for (const alg of ASYMMETRIC_ALGS) {
    it(`${alg}: accepts and rejects exactly the tokens jose does`, async () => {
      const cases = casesFor(alg);
      const table = await Promise.all(cases.map(async (c) => ({ name: c.name, ours: await oursAccepts(alg, c), jose: await joseAccepts(alg, c) })));
      for (const row of table) expect({ name: row.name, ours: row.ours }).toEqual({ name: row.name, ours: row.jose });
      // Not vacuous: the valid token is accepted and something is refused.
      expect(table.find((r) => r.name === 'valid')).toMatchObject({ ours: true, jose: true });
      expect(table.filter((r) => !r.ours).length).toBeGreaterThanOrEqual(cases.length - 2);
    });
  }
});

describe('verificationKey: a key serves exactly one algorithm it fits', () => {
  const imported = async (jwk: JWK, alg: string) => (await createLocalJWKSet({ keys: [{ ...jwk, alg }] })({ alg, kid: jwk.kid }, { payload: '', signature: '' })) as never;

  it('accepts each natural pairing and refuses wrong curves, types, imports and short RSA keys', async () => {
    const { verificationKey } = await import('../../core/identity/signature');
    const p256 = await imported(pairs['p256-a']!.jwk, 'ES256');
    const p384 = await imported(pairs.p384!.jwk, 'ES384');
    const rsaRs = await imported(pairs['rsa-a']!.jwk, 'RS256');
    const rsaPs = await imported(pairs['rsa-a']!.jwk, 'PS256');
    const ed = await imported(pairs['ed25519-a']!.jwk, 'EdDSA');
    expect(verificationKey('ES256', p256)?.alg).toBe('ES256');
    expect(verificationKey('ES384', p384)?.alg).toBe('ES384');
    expect(verificationKey('RS256', rsaRs)?.alg).toBe('RS256');
    expect(verificationKey('PS256', rsaPs)?.alg).toBe('PS256');
    expect(verificationKey('EdDSA', ed)?.alg).toBe('EdDSA');
    // Wrong curve for the algorithm (jose imported it as ECDSA, but for another curve).
    expect(verificationKey('ES256', p384)).toBeUndefined();
    expect(verificationKey('ES512', p256)).toBeUndefined();
    // Imported by jose for another algorithm (WebCrypto binds a key to one).
    expect(verificationKey('PS256', rsaRs)).toBeUndefined();
    expect(verificationKey('RS256', rsaPs)).toBeUndefined();
    expect(verificationKey('RS384', rsaRs)).toBeUndefined();
    // Wrong type, unknown or symmetric algorithms.
    expect(verificationKey('RS256', p256)).toBeUndefined();
    expect(verificationKey('EdDSA', rsaRs)).toBeUndefined();
    expect(verificationKey('HS256', rsaRs)).toBeUndefined();
    expect(verificationKey('none', rsaRs)).toBeUndefined();
    // RSA under 2048 bits (jose itself imports it).
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const smallJwk = { ...(await exportJWK(small.publicKey)), kid: 'small' };
    expect(verificationKey('RS256', await imported(smallJwk, 'RS256'))).toBeUndefined();
  });

  it('refuses to check a signature for an algorithm other than the key\'s', async () => {
    const { verificationKey, signatureValid } = await import('../../core/identity/signature');
    const vk = verificationKey('RS256', await imported(pairs['rsa-a']!.jwk, 'RS256'))!;
    const input = `${b64({ alg: 'RS256' })}.${b64({})}`;
    const sig = signWith('RS256', pairs['rsa-a']!.privateKey, input);
    expect(signatureValid('RS256', vk, input, sig)).toBe(true);
    expect(signatureValid('RS384', vk, input, sig)).toBe(false);
    expect(signatureValid('PS256', vk, input, sig)).toBe(false);
  });
});

import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { keyProblem, parseIssuers } from '../../core/config/issuers';
import { ConfigError } from '../../core/errors';

let rsa: JWK;
let ec: JWK;
let ec384: JWK;
let ed: JWK;
let rsaPrivate: JWK;
let rsa1024: JWK;

beforeAll(async () => {
  const r = await generateKeyPair('RS256', { extractable: true });
  rsa = { ...(await exportJWK(r.publicKey)), kid: 'rsa' };
  rsaPrivate = { ...(await exportJWK(r.privateKey)), kid: 'rsa' };
  ec = { ...(await exportJWK((await generateKeyPair('ES256')).publicKey)), kid: 'ec' };
  ec384 = { ...(await exportJWK((await generateKeyPair('ES384')).publicKey)), kid: 'ec384' };
  ed = { ...(await exportJWK((await generateKeyPair('EdDSA', { crv: 'Ed25519' })).publicKey)), kid: 'ed' };
  // jose refuses to generate RSA keys under 2048 bits, so node:crypto makes the weak one.
  rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) as JWK;
});

const base = (extra: Record<string, unknown> = {}) => ({ issuer: 'https://idp.test/', audience: 'api', jwks: { keys: [rsa] }, ...extra });
const remote = (extra: Record<string, unknown> = {}) => ({ issuer: 'https://idp.test/', audience: 'api', jwksUri: 'https://idp.test/jwks', ...extra });
const parse = (v: unknown) => parseIssuers(typeof v === 'string' ? v : JSON.stringify(v));

/** The ConfigError thrown for `config`. */
function configError(config: unknown): ConfigError {
  try {
    parse(config);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`accepted: ${JSON.stringify(config)}`);
}

describe('GATEHOUSE_ISSUERS: accepted configurations', () => {
  it('unset, empty or blank means no issuers', () => {
    expect(parseIssuers(undefined)).toEqual([]);
    expect(parseIssuers('')).toEqual([]);
    expect(parseIssuers('  \n')).toEqual([]);
    expect(parseIssuers('[]')).toEqual([]);
  });

  it('fills every default', () => {
    const [c] = parse([base()]);
    expect(c).toEqual({
      issuer: 'https://idp.test/',
      audience: ['api'],
      jwks: { keys: [rsa] },
      algorithms: ['RS256'],
      userIdPrefix: '',
      emailClaim: 'email',
      groupsClaim: 'groups',
      clockToleranceSeconds: 30,
      trustEmail: false,
    });
  });

  it('keeps every optional field', () => {
    const [c] = parse([remote({ audience: ['a', 'b'], algorithms: ['ES256', 'EdDSA'], typ: 'at+jwt', userIdPrefix: 'idp|', emailClaim: 'upn', groupsClaim: 'roles', clockToleranceSeconds: 0, maxTokenAgeSeconds: 3600, trustEmail: true })]);
    expect(c).toEqual({
      issuer: 'https://idp.test/',
      audience: ['a', 'b'],
      jwksUri: 'https://idp.test/jwks',
      algorithms: ['ES256', 'EdDSA'],
      typ: 'at+jwt',
      userIdPrefix: 'idp|',
      emailClaim: 'upn',
      groupsClaim: 'roles',
      clockToleranceSeconds: 0,
      maxTokenAgeSeconds: 3600,
      trustEmail: true,
    });
  });

  it('the issuer need not be a URL', () => {
    expect(parse([base({ issuer: 'urn:example:idp' })])[0]!.issuer).toBe('urn:example:idp');
  });

  it('derives the algorithm allow-list from inline keys, else RS256', () => {
    expect(parse([base({ jwks: { keys: [ec] } })])[0]!.algorithms).toEqual(['ES256']);
    expect(parse([base({ jwks: { keys: [rsa, ec384, ed] } })])[0]!.algorithms).toEqual(['RS256', 'ES384', 'EdDSA']);
    expect(parse([base({ jwks: { keys: [{ ...rsa, alg: 'PS512' }] } })])[0]!.algorithms).toEqual(['PS512']);
    expect(parse([remote()])[0]!.algorithms).toEqual(['RS256']);
    // An explicit list wins and is de-duplicated.
    expect(parse([base({ algorithms: ['RS256', 'RS256', 'PS256'] })])[0]!.algorithms).toEqual(['RS256', 'PS256']);
  });

  it.each([
    'https://idp.test/jwks',
    'http://127.0.0.1:9/jwks',
    'http://127.10.20.30/jwks',
    'http://localhost:8080/jwks',
    'http://LOCALHOST/jwks',
    'http://[::1]:8/jwks',
  ])('accepts jwksUri %s', (jwksUri) => {
    expect(parse([remote({ jwksUri })])[0]!.jwksUri).toBeDefined();
  });

  it('accepts keys marked for signatures', () => {
    expect(parse([base({ jwks: { keys: [{ ...rsa, use: 'sig', key_ops: ['verify'], alg: 'RS256' }] } })])).toHaveLength(1);
  });

  it('several issuers, each with its own settings', () => {
    const out = parse([base(), remote({ issuer: 'https://other.test/', userIdPrefix: 'other|' })]);
    expect(out.map((c) => c.issuer)).toEqual(['https://idp.test/', 'https://other.test/']);
  });
});

describe('GATEHOUSE_ISSUERS: every bad field is a ConfigError naming it', () => {
  it('uses the documented message shape', () => {
    const err = configError([base(), remote({ issuer: 'https://b.test/', jwksUri: 'http://idp.example.com/jwks' })]);
    expect(err.message).toBe('GATEHOUSE_ISSUERS[1].jwksUri: must be https (http only for loopback)');
    expect(err.code).toBe('invalid-config');
  });

  // Rows are built before beforeAll generates keys: they use remote(), which needs none.
  it.each([
    ['invalid JSON', 'not json', /^GATEHOUSE_ISSUERS: not valid JSON/],
    ['truncated JSON', '[{"issuer":', /^GATEHOUSE_ISSUERS: not valid JSON/],
    ['an object instead of an array', { issuer: 'x' }, /^GATEHOUSE_ISSUERS: must be a JSON array/],
    ['an entry that is not an object', [5], /^GATEHOUSE_ISSUERS\[0\]: must be an object/],
    ['an entry that is an array', [[]], /^GATEHOUSE_ISSUERS\[0\]: must be an object/],
    ['an entry that is null', [null], /^GATEHOUSE_ISSUERS\[0\]: must be an object/],
    // issuer
    ['missing issuer', [{ audience: 'api', jwksUri: 'https://x/jwks' }], /\[0\]\.issuer/],
    ['empty issuer', [remote({ issuer: '' })], /\[0\]\.issuer/],
    ['blank issuer', [remote({ issuer: '   ' })], /\[0\]\.issuer/],
    ['issuer not a string', [remote({ issuer: 5 })], /\[0\]\.issuer/],
    ['issuer with stray whitespace', [remote({ issuer: 'https://idp.test/ ' })], /\[0\]\.issuer: must not start or end with whitespace/],
    ['duplicate issuer', [remote(), remote()], /^GATEHOUSE_ISSUERS\[1\]\.issuer: duplicate/],
    // audience
    ['missing audience', [{ issuer: 'i', jwksUri: 'https://x/jwks' }], /\[0\]\.audience/],
    ['empty audience', [remote({ audience: '' })], /\[0\]\.audience/],
    ['empty audience array', [remote({ audience: [] })], /\[0\]\.audience/],
    ['audience array with an empty string', [remote({ audience: ['api', ''] })], /\[0\]\.audience/],
    ['audience array with a number', [remote({ audience: ['api', 5] })], /\[0\]\.audience/],
    ['audience a number', [remote({ audience: 5 })], /\[0\]\.audience/],
    ['audience an object', [remote({ audience: { aud: 'api' } })], /\[0\]\.audience/],
    // key source
    ['both jwks and jwksUri', [base({ jwksUri: 'https://x/jwks' })], /\[0\]\.jwksUri: exactly one of jwksUri and jwks/],
    ['neither jwks nor jwksUri', [{ issuer: 'i', audience: 'a' }], /\[0\]\.jwksUri: exactly one of jwksUri and jwks/],
    ['http on a public host', [remote({ jwksUri: 'http://idp.example.com/jwks' })], /\[0\]\.jwksUri: must be https \(http only for loopback\)/],
    ['http on a private address', [remote({ jwksUri: 'http://10.0.0.1/jwks' })], /\[0\]\.jwksUri: must be https/],
    ['http on a look-alike of localhost', [remote({ jwksUri: 'http://localhost.evil.test/jwks' })], /\[0\]\.jwksUri: must be https/],
    ['http on a name that embeds 127.0.0.1', [remote({ jwksUri: 'http://127.0.0.1.nip.io/jwks' })], /\[0\]\.jwksUri: must be https/],
    ['http on 0.0.0.0', [remote({ jwksUri: 'http://0.0.0.0/jwks' })], /\[0\]\.jwksUri: must be https/],
    ['another scheme', [remote({ jwksUri: 'ftp://idp.test/jwks' })], /\[0\]\.jwksUri: must be https/],
    ['a file URL', [remote({ jwksUri: 'file:///etc/jwks.json' })], /\[0\]\.jwksUri: must be https/],
    ['not a URL', [remote({ jwksUri: 'idp.test/jwks' })], /\[0\]\.jwksUri: not a valid URL/],
    ['a URL with credentials', [remote({ jwksUri: 'https://u:p@idp.test/jwks' })], /\[0\]\.jwksUri: must not carry credentials/],
    ['jwksUri not a string', [remote({ jwksUri: 5 })], /\[0\]\.jwksUri/],
    ['jwks not a key set', [base({ jwks: [rsa] })], /\[0\]\.jwks: a key set/],
    ['jwks without keys', [base({ jwks: {} })], /\[0\]\.jwks: a key set/],
    ['jwks with no keys', [base({ jwks: { keys: [] } })], /\[0\]\.jwks: a key set/],
    ['jwks null', [base({ jwks: null })], /\[0\]\.jwks/],
    // algorithms
    ['HS256 in algorithms', [remote({ algorithms: ['HS256'] })], /\[0\]\.algorithms: "HS256" is not allowed/],
    ['HS512 among good ones', [remote({ algorithms: ['RS256', 'HS512'] })], /\[0\]\.algorithms: "HS512" is not allowed/],
    ['none in algorithms', [remote({ algorithms: ['none'] })], /\[0\]\.algorithms: "none" is not allowed/],
    ['lower-case alg', [remote({ algorithms: ['rs256'] })], /\[0\]\.algorithms: "rs256" is not allowed/],
    ['an encryption alg', [remote({ algorithms: ['RSA-OAEP'] })], /\[0\]\.algorithms: "RSA-OAEP" is not allowed/],
    ['empty algorithms', [remote({ algorithms: [] })], /\[0\]\.algorithms: a non-empty array/],
    ['algorithms a string', [remote({ algorithms: 'RS256' })], /\[0\]\.algorithms: a non-empty array/],
    // other fields
    ['an unknown field', [remote({ extra: 1 })], /^GATEHOUSE_ISSUERS\[0\]\.extra: unknown field/],
    ['a misspelt field', [remote({ audiences: ['api'] })], /\[0\]\.audiences: unknown field/],
    ['a __proto__ field', `[{"issuer":"i","audience":"a","jwksUri":"https://x/jwks","__proto__":{"trustEmail":true}}]`, /\[0\]\.__proto__: unknown field/],
    ['empty typ', [remote({ typ: '' })], /\[0\]\.typ/],
    ['typ a number', [remote({ typ: 1 })], /\[0\]\.typ/],
    ['userIdPrefix a number', [remote({ userIdPrefix: 5 })], /\[0\]\.userIdPrefix/],
    ['empty emailClaim', [remote({ emailClaim: '' })], /\[0\]\.emailClaim/],
    ['groupsClaim an array', [remote({ groupsClaim: ['groups'] })], /\[0\]\.groupsClaim/],
    ['negative clockToleranceSeconds', [remote({ clockToleranceSeconds: -1 })], /\[0\]\.clockToleranceSeconds: an integer 0\.\.300/],
    ['clockToleranceSeconds over 300', [remote({ clockToleranceSeconds: 301 })], /\[0\]\.clockToleranceSeconds/],
    ['fractional clockToleranceSeconds', [remote({ clockToleranceSeconds: 1.5 })], /\[0\]\.clockToleranceSeconds/],
    ['clockToleranceSeconds a string', [remote({ clockToleranceSeconds: '30' })], /\[0\]\.clockToleranceSeconds/],
    ['zero maxTokenAgeSeconds', [remote({ maxTokenAgeSeconds: 0 })], /\[0\]\.maxTokenAgeSeconds: a positive integer/],
    ['negative maxTokenAgeSeconds', [remote({ maxTokenAgeSeconds: -60 })], /\[0\]\.maxTokenAgeSeconds/],
    ['fractional maxTokenAgeSeconds', [remote({ maxTokenAgeSeconds: 1.5 })], /\[0\]\.maxTokenAgeSeconds/],
    ['maxTokenAgeSeconds a string', [remote({ maxTokenAgeSeconds: '3600' })], /\[0\]\.maxTokenAgeSeconds/],
    ['trustEmail a string', [remote({ trustEmail: 'yes' })], /\[0\]\.trustEmail: must be a boolean/],
  ] as [string, unknown, RegExp][])('%s', (_n, config, message) => {
    expect(configError(config).message).toMatch(message);
  });
});

describe('GATEHOUSE_ISSUERS: unusable inline keys fail at cold start', () => {
  const keys = (...k: unknown[]) => [base({ jwks: { keys: k } })];
  it.each([
    ['a symmetric (oct) key', () => keys({ kty: 'oct', k: 'c2VjcmV0' }), /jwks\.keys\[0\]: symmetric \(oct\) keys are not allowed/],
    ['an encryption key (use enc)', () => keys({ ...rsa, use: 'enc' }), /jwks\.keys\[0\]: use "enc" is not for signatures/],
    ['key_ops without verify', () => keys({ ...rsa, key_ops: ['encrypt', 'wrapKey'] }), /jwks\.keys\[0\]: key_ops does not include verify/],
    ['key_ops with only sign', () => keys({ ...rsa, key_ops: ['sign'] }), /jwks\.keys\[0\]: key_ops does not include verify/],
    ['key_ops not an array', () => keys({ ...rsa, key_ops: 'verify' }), /jwks\.keys\[0\]: key_ops/],
    ['RSA 1024', () => keys(rsa1024), /jwks\.keys\[0\]: RSA modulus of 1024 bits is under 2048/],
    ['an RSA private key', () => keys(rsaPrivate), /jwks\.keys\[0\]: private key material must not be configured/],
    ['a key with d', () => keys({ ...ec, d: 'AAAA' }), /jwks\.keys\[0\]: private key material/],
    ['an RSA key with exponent 1', () => keys({ ...rsa, e: 'AQ' }), /jwks\.keys\[0\]: RSA public exponent/],
    ['an RSA key with an even exponent', () => keys({ ...rsa, e: 'AQAC' }), /jwks\.keys\[0\]: RSA public exponent/],
    ['an RSA key without n', () => keys({ kty: 'RSA', e: 'AQAB' }), /jwks\.keys\[0\]: RSA key needs/],
    ['an EC key on an unsupported curve', () => keys({ ...ec, crv: 'secp256k1' }), /jwks\.keys\[0\]: EC curve "secp256k1" is not supported/],
    ['an OKP key-agreement curve', () => keys({ kty: 'OKP', crv: 'X25519', x: 'AAAA' }), /jwks\.keys\[0\]: OKP curve "X25519" is not a signature curve/],
    ['no kty', () => keys({ n: rsa.n, e: rsa.e }), /jwks\.keys\[0\]: unsupported kty/],
    ['a key that is not an object', () => keys('rsa'), /jwks\.keys\[0\]: not an object/],
    ['a non-string kid', () => keys({ ...rsa, kid: 7 }), /jwks\.keys\[0\]: kid must be a string/],
    ['a key alg outside the allow-list', () => [base({ algorithms: ['RS256'], jwks: { keys: [{ ...rsa, alg: 'RS512' }] } })], /jwks\.keys\[0\]: alg "RS512" is not in the issuer's algorithms/],
    ['a symmetric alg on a key', () => keys({ ...rsa, alg: 'HS256' }), /jwks\.keys\[0\]: alg "HS256" is not an allowed algorithm/],
    ['an alg that does not fit the key type', () => keys({ ...rsa, alg: 'ES256' }), /jwks\.keys\[0\]: alg "ES256" does not fit a RSA key/],
    ['an alg that does not fit the curve', () => keys({ ...ec, alg: 'ES384' }), /jwks\.keys\[0\]: alg "ES384" does not fit a EC key/],
    ['a key no allowed algorithm fits', () => [base({ algorithms: ['RS256'], jwks: { keys: [ec] } })], /jwks\.keys\[0\]: no algorithm in the issuer's algorithms fits this EC key/],
    ['the second key is the bad one', () => keys(rsa, { kty: 'oct', k: 'c2VjcmV0' }), /^GATEHOUSE_ISSUERS\[0\]\.jwks\.keys\[1\]: symmetric/],
  ] as [string, () => unknown, RegExp][])('%s', (_n, config, message) => {
    expect(configError(config()).message).toMatch(message);
  });

  it('counts RSA modulus bits exactly (a leading zero byte does not make 2040 bits into 2048)', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 2040 }).publicKey.export({ format: 'jwk' }) as JWK;
    const padded = { ...weak, n: Buffer.concat([Buffer.alloc(1), Buffer.from(weak.n!, 'base64url')]).toString('base64url') };
    expect(configError(keys(padded)).message).toMatch(/RSA modulus of 2040 bits is under 2048/);
  });
});

describe('keyProblem (shared with fetched key sets)', () => {
  it('is silent for good keys and names the problem of bad ones', () => {
    expect(keyProblem(rsa, ['RS256'])).toBeUndefined();
    expect(keyProblem(ec, ['ES256'])).toBeUndefined();
    expect(keyProblem(ed, ['EdDSA'])).toBeUndefined();
    expect(keyProblem({ ...rsa, alg: 'PS256' }, ['RS256'])).toMatch(/not in the issuer's algorithms/);
    expect(keyProblem(null as never, ['RS256'])).toBe('not an object');
  });
});

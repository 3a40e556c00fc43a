import { exportJWK, generateKeyPair } from 'jose';
import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseIssuers } from '../../core/config/issuers';
import { parseSettings } from '../../core/config/settings';
import { ConfigError } from '../../core/errors';

let rsaJwk: Record<string, unknown>;
beforeAll(async () => {
  const { publicKey } = await generateKeyPair('RS256', { extractable: true });
  rsaJwk = { ...(await exportJWK(publicKey)), kid: 'k' };
});

const base = () => ({ issuer: 'https://idp.test/', audience: 'api', jwks: { keys: [rsaJwk] } });

function fails(config: unknown, field: RegExp) {
  let err: unknown;
  try {
    parseIssuers(typeof config === 'string' ? config : JSON.stringify(config));
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toMatch(field);
}

describe('GATEHOUSE_ISSUERS validation (fails at cold start, naming the field)', () => {
  it('accepts a minimal issuer and fills defaults', () => {
    const [c] = parseIssuers(JSON.stringify([base()]));
    expect(c).toMatchObject({ audience: ['api'], algorithms: ['RS256'], userIdPrefix: '', emailClaim: 'email', groupsClaim: 'groups', clockToleranceSeconds: 30, trustEmail: false });
    expect(parseIssuers(undefined)).toEqual([]);
    expect(parseIssuers('')).toEqual([]);
  });

  it('accepts https and loopback http JWKS URIs', () => {
    for (const jwksUri of ['https://idp.test/jwks', 'http://127.0.0.1:9/jwks', 'http://localhost/jwks', 'http://[::1]:8/jwks']) {
      expect(parseIssuers(JSON.stringify([{ issuer: 'i', audience: 'a', jwksUri }]))[0]!.jwksUri).toBeDefined();
    }
  });

  it('names every bad field', () => {
    fails('not json', /GATEHOUSE_ISSUERS: not valid JSON/);
    fails({}, /must be a JSON array/);
    fails([5], /GATEHOUSE_ISSUERS\[0\]: must be an object/);
    fails([{ ...base(), issuer: '' }], /\[0\]\.issuer/);
    fails([{ ...base(), audience: [] }], /\[0\]\.audience/);
    fails([{ ...base(), audience: 5 }], /\[0\]\.audience/);
    fails([{ ...base(), jwksUri: 'https://x/jwks' }], /\[0\]\.jwksUri: exactly one/);
    fails([{ issuer: 'i', audience: 'a' }], /\[0\]\.jwksUri: exactly one/);
    fails([{ issuer: 'i', audience: 'a', jwksUri: 'http://idp.example.com/jwks' }], /\[0\]\.jwksUri: must be https/);
    fails([{ issuer: 'i', audience: 'a', jwksUri: 'http://10.0.0.1/jwks' }], /\[0\]\.jwksUri: must be https/);
    fails([{ issuer: 'i', audience: 'a', jwksUri: 'ftp://x/jwks' }], /\[0\]\.jwksUri/);
    fails([{ issuer: 'i', audience: 'a', jwksUri: 'https://u:p@x/jwks' }], /\[0\]\.jwksUri/);
    fails([{ ...base(), algorithms: ['HS256'] }], /\[0\]\.algorithms: "HS256"/);
    fails([{ ...base(), algorithms: ['none'] }], /\[0\]\.algorithms/);
    fails([{ ...base(), algorithms: [] }], /\[0\]\.algorithms/);
    fails([{ ...base(), extra: 1 }], /\[0\]\.extra: unknown field/);
    fails([{ ...base(), clockToleranceSeconds: -1 }], /clockToleranceSeconds/);
    fails([{ ...base(), clockToleranceSeconds: 1.5 }], /clockToleranceSeconds/);
    fails([{ ...base(), maxTokenAgeSeconds: 0 }], /maxTokenAgeSeconds/);
    fails([{ ...base(), trustEmail: 'yes' }], /trustEmail/);
    fails([{ ...base(), emailClaim: '' }], /emailClaim/);
    fails([base(), base()], /\[1\]\.issuer: duplicate/);
  });

  it('refuses unusable keys: symmetric, encryption-only, short RSA, private, wrong alg', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    fails([{ ...base(), jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }], /keys\[0\]: symmetric/);
    fails([{ ...base(), jwks: { keys: [{ ...rsaJwk, use: 'enc' }] } }], /keys\[0\]: use "enc"/);
    fails([{ ...base(), jwks: { keys: [{ ...rsaJwk, key_ops: ['encrypt'] }] } }], /keys\[0\]: key_ops/);
    fails([{ ...base(), jwks: { keys: [small] } }], /keys\[0\]: RSA modulus of 1024 bits/);
    fails([{ ...base(), jwks: { keys: [{ ...rsaJwk, d: 'x' }] } }], /keys\[0\]: private key/);
    fails([{ ...base(), algorithms: ['RS256'], jwks: { keys: [{ ...rsaJwk, alg: 'RS512' }] } }], /keys\[0\]: alg "RS512"/);
    fails([{ ...base(), jwks: { keys: [] } }], /\[0\]\.jwks/);
  });

  it('other settings fail loudly too', () => {
    expect(() => parseSettings({ GATEHOUSE_CACHE_TTL_SECONDS: 'soon' })).toThrow(/GATEHOUSE_CACHE_TTL_SECONDS/);
    expect(() => parseSettings({ GATEHOUSE_CACHE_TTL_SECONDS: '-1' })).toThrow(/GATEHOUSE_CACHE_TTL_SECONDS/);
    expect(() => parseSettings({ GATEHOUSE_HTTP_RESPONSE: 'both' })).toThrow(/GATEHOUSE_HTTP_RESPONSE/);
    expect(() => parseSettings({ GATEHOUSE_LOG_LEVEL: 'loud' })).toThrow(/GATEHOUSE_LOG_LEVEL/);
    expect(() => parseSettings({ GATEHOUSE_TABLE: 'a b' })).toThrow(/GATEHOUSE_TABLE/);
    expect(parseSettings({})).toMatchObject({ tableName: 'gatehouse', cacheTtlSeconds: 30, httpResponse: 'simple', logLevel: 'info', issuers: [] });
  });
});

import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseIssuers, userIdOwner, type IssuerConfig } from '../../core/config/issuers';
import { ConfigError, Unauthenticated } from '../../core/errors';
import { JwtVerifier } from '../../core/identity/jwt';
import { buildHandlers } from '../../functions/apps';
import { testRuntime, TestClock } from '../support/runtime';
import { mulberry32 as prng } from '../support/prng';

/**
 * DESIGN §2: two issuers must never be able to name the same user. Issuers with the same
 * `userIdPrefix` are refused at cold start, and a user id belongs to the issuer with the
 * longest prefix it starts with: a token whose user id starts with another issuer's
 * longer prefix is a 401 (with issuers "" and "partner_", the first cannot sign in
 * "partner_alice").
 */

let key: { privateKey: CryptoKey; jwk: JWK };
const clock = new TestClock();

beforeAll(async () => {
  const k = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  key = { privateKey: k.privateKey, jwk: { ...(await exportJWK(k.publicKey)), kid: 'k', alg: 'EdDSA' } };
});

const entry = (issuer: string, userIdPrefix?: string) => ({ issuer, audience: 'api', jwks: { keys: [key.jwk] }, ...(userIdPrefix !== undefined ? { userIdPrefix } : {}) });
const parse = (entries: unknown[]) => parseIssuers(JSON.stringify(entries));
const sign = (iss: string, sub: string) =>
  new SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid: 'k' }).setIssuer(iss).setAudience('api').setSubject(sub).setIssuedAt(clock.seconds).setExpirationTime(clock.seconds + 600).sign(key.privateKey);

/** The user id a token verifies to, or the 401's code. */
async function outcome(v: JwtVerifier, iss: string, sub: string): Promise<string> {
  try {
    return `user:${(await v.verify(await sign(iss, sub))).userId}`;
  } catch (err) {
    if (err instanceof Unauthenticated) return err.code;
    throw err;
  }
}

describe('issuers with the same userIdPrefix are refused at cold start', () => {
  const refused = (entries: unknown[]) => {
    try {
      parse(entries);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error(`accepted ${JSON.stringify(entries)}`);
  };

  it('two issuers left at the default (empty) prefix', () => {
    expect(refused([entry('https://a.test/'), entry('https://b.test/')])).toMatch(/^GATEHOUSE_ISSUERS\[1\]\.userIdPrefix: /);
  });

  it('an explicit empty prefix beside a default one, and two equal explicit prefixes', () => {
    expect(refused([entry('https://a.test/', ''), entry('https://b.test/')])).toMatch(/^GATEHOUSE_ISSUERS\[1\]\.userIdPrefix: /);
    expect(refused([entry('https://a.test/', 'p_'), entry('https://b.test/', 'q_'), entry('https://c.test/', 'p_')])).toMatch(/^GATEHOUSE_ISSUERS\[2\]\.userIdPrefix: .*GATEHOUSE_ISSUERS\[0\]/);
  });

  it('distinct prefixes are accepted, nested ones included', () => {
    expect(parse([entry('https://a.test/'), entry('https://b.test/', 'partner_'), entry('https://c.test/', 'partner_eu_')]).map((c) => c.userIdPrefix)).toEqual(['', 'partner_', 'partner_eu_']);
  });
});

describe('a user id belongs to the issuer with the longest prefix it starts with', () => {
  it('userIdOwner picks the longest matching prefix, or none', () => {
    const [plain, partner, eu] = parse([entry('https://a.test/'), entry('https://b.test/', 'partner_'), entry('https://c.test/', 'partner_eu_')]);
    const all = [plain!, partner!, eu!];
    expect(userIdOwner(all, 'alice')).toBe(plain);
    expect(userIdOwner(all, 'partner_alice')).toBe(partner);
    expect(userIdOwner(all, 'partner_eu_alice')).toBe(eu);
    expect(userIdOwner(all, 'partner')).toBe(plain);
    expect(userIdOwner([partner!, eu!], 'alice')).toBeUndefined();
  });

  it('through the verifier: the unprefixed issuer cannot sign in a partner_ user (401 jwt-foreign-user-id)', async () => {
    const v = new JwtVerifier({ issuers: parse([entry('https://a.test/'), entry('https://b.test/', 'partner_')]), now: clock.now });
    expect(await outcome(v, 'https://a.test/', 'partner_alice')).toBe('jwt-foreign-user-id');
    expect(await outcome(v, 'https://a.test/', 'alice')).toBe('user:alice');
    expect(await outcome(v, 'https://b.test/', 'alice')).toBe('user:partner_alice');
    // Nested prefixes: partner_ cannot reach into partner_eu_ either.
    const nested = new JwtVerifier({ issuers: parse([entry('https://b.test/', 'partner_'), entry('https://c.test/', 'partner_eu_')]), now: clock.now });
    expect(await outcome(nested, 'https://b.test/', 'eu_bob')).toBe('jwt-foreign-user-id');
    expect(await outcome(nested, 'https://c.test/', 'bob')).toBe('user:partner_eu_bob');
  });

  it('through a real handler: the foreign user id is a 401 logged with its code, never the prefixed user\'s rights', async () => {
    const rt = await testRuntime({ env: { GATEHOUSE_ISSUERS: JSON.stringify([entry('https://a.test/'), entry('https://b.test/', 'partner_')]) }, clock });
    await rt.store.policy.putRoutes([{ route: 'GET /things', resource: 'thing', action: 'read' }], clock.seconds);
    await rt.store.users.putSiteRoles('partner_alice', ['site-admin'], clock.seconds);
    const h = buildHandlers(rt);
    const ask = async (iss: string, sub: string) =>
      h.rest({ type: 'TOKEN', authorizationToken: `Bearer ${await sign(iss, sub)}`, methodArn: 'arn:aws:execute-api:us-east-1:123456789012:api123/prod/GET/things' });
    // The partner issuer's alice is partner_alice, a site admin.
    expect((await ask('https://b.test/', 'alice')).policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow' });
    // The unprefixed issuer naming the same user id is refused before any decision.
    await expect(ask('https://a.test/', 'partner_alice')).rejects.toThrow(/^Unauthorized$/);
    const decisions = rt.logs.map((l) => JSON.parse(l)).filter((l) => l.message === 'authorizer.decision');
    expect(decisions.at(-1)).toMatchObject({ effect: 'unauthorized', reason: 'jwt-foreign-user-id' });
    expect(decisions.at(-1)).not.toHaveProperty('principalId');
  });
});


/** The reference: every issuer whose prefix the id starts with, the longest one. */
function longestPrefixReference(configs: IssuerConfig[], id: string): IssuerConfig | undefined {
  const candidates = configs.filter((c) => id.startsWith(c.userIdPrefix)).sort((a, b) => b.userIdPrefix.length - a.userIdPrefix.length);
  return candidates[0];
}

/** Short strings over a tiny alphabet, so prefixes nest and collide often. */
const word = (rnd: () => number, max: number) => Array.from({ length: Math.floor(rnd() * (max + 1)) }, () => 'ab_'[Math.floor(rnd() * 3)]).join('');

describe('property: over generated prefix sets, no user id has two issuers', () => {
  it('userIdOwner agrees with a brute-force longest-prefix reference', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = prng(seed);
      const prefixes = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 5) }, () => word(rnd, 3)))];
      const configs = parse(prefixes.map((p, i) => entry(`https://i${i}.test/`, p)));
      for (let n = 0; n < 30; n++) {
        const id = word(rnd, 6);
        const longest = longestPrefixReference(configs, id);
        expect(userIdOwner(configs, id), `seed ${seed}: ${JSON.stringify(prefixes)} / ${JSON.stringify(id)}`).toBe(longest);
      }
    }
  });

  it('through the verifier: every user id is signed in by at most one issuer, and always by its owner', async () => {
    for (let seed = 1; seed <= 25; seed++) {
      const rnd = prng(seed);
      const prefixes = [...new Set(Array.from({ length: 2 + Math.floor(rnd() * 3) }, () => word(rnd, 2)))];
      const configs = parse(prefixes.map((p, i) => entry(`https://i${i}.test/`, p)));
      const v = new JwtVerifier({ issuers: configs, now: clock.now });
      const ids = new Set(Array.from({ length: 6 }, () => `${word(rnd, 3)}x`));
      for (const id of ids) {
        // Every issuer whose prefix the id starts with could present it (sub = the rest).
        const accepted: string[] = [];
        for (const c of configs.filter((c) => id.startsWith(c.userIdPrefix))) {
          const r = await outcome(v, c.issuer, id.slice(c.userIdPrefix.length));
          if (r === `user:${id}`) accepted.push(c.issuer);
          else expect(r, `seed ${seed}`).toBe('jwt-foreign-user-id');
        }
        expect(accepted, `seed ${seed}: ${JSON.stringify(prefixes)} / ${id}`).toEqual(configs.some((c) => id.startsWith(c.userIdPrefix)) ? [longestPrefixReference(configs, id)!.issuer] : []);
      }
    }
  });
});

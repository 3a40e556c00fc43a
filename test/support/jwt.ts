import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

export const ISSUER = 'https://idp.test/';
export const AUDIENCE = 'api';

/** A test OIDC issuer: an RS256 key pair, its public JWKS, and a signer. */
export async function makeIssuer(options: { issuer?: string; kid?: string } = {}) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const kid = options.kid ?? 'k1';
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const issuer = options.issuer ?? ISSUER;
  return {
    issuer,
    jwks: { keys: [jwk] },
    config: { issuer, audience: AUDIENCE, jwks: { keys: [jwk] }, algorithms: ['RS256'] },
    /** Signs a token for `sub` that is valid for an hour from `nowS`. */
    sign: async (sub: string, nowS: number, claims: Record<string, unknown> = {}) =>
      new SignJWT({ ...claims })
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setAudience(AUDIENCE)
        .setSubject(sub)
        .setIssuedAt(nowS)
        .setExpirationTime(nowS + 3600)
        .sign(privateKey),
    privateKey,
  };
}

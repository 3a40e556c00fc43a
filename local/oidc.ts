import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { checkExtraClaims, LOCAL_AUDIENCE, LOCAL_CLIENT_ID, LOCAL_CLIENT_SECRET, LOCAL_USER_GRANT, parseGroups } from './oidc-client';

export interface LocalIssuer {
  issuer: string;
  jwksUri: string;
  tokenUrl: string;
  /** The `GATEHOUSE_ISSUERS` entry that trusts this issuer. */
  config: Record<string, unknown>;
  stop(): Promise<void>;
}

async function signingKey(dataDir: string | undefined): Promise<JWK> {
  const file = dataDir ? join(dataDir, 'oidc-signing-key.json') : undefined;
  if (file && existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as JWK;
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `local-${Date.now().toString(36)}`, alg: 'RS256', use: 'sig' };
  if (file) writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

/**
 * A real OIDC provider (`oidc-provider`) on loopback: discovery, JWKS, and a token
 * endpoint with one extra grant that issues a JWT access token for a chosen user and
 * (verified) email. Keys live in the data directory so tokens survive restarts.
 */
export async function startLocalIssuer(options: { port?: number; dataDir?: string } = {}): Promise<LocalIssuer> {
  let delegate: ((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (delegate) delegate(req, res);
    else {
      res.statusCode = 503;
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const key = await signingKey(options.dataDir);
  const provider = new Provider(issuer, {
    clients: [{ client_id: LOCAL_CLIENT_ID, client_secret: LOCAL_CLIENT_SECRET, grant_types: [LOCAL_USER_GRANT], redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_post' }],
    jwks: { keys: [key as never] },
    cookies: { keys: ['gatehouse-local-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => LOCAL_AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'api', audience: LOCAL_AUDIENCE, accessTokenFormat: 'jwt', accessTokenTTL: 3600, jwt: { sign: { alg: 'RS256' } } }),
      },
    },
    // The chosen user, email, groups and claims ride along as extra claims (validated by the grant)...
    extraTokenClaims: (ctx: any) => {
      const p = (ctx?.oidc?.params ?? {}) as { user?: string; email?: string; groups?: string; claims?: string };
      if (!p.user) return undefined;
      return {
        gatehouse_user: p.user,
        ...(p.email ? { email: p.email.trim().toLowerCase(), email_verified: true } : {}),
        ...(p.groups ? { groups: parseGroups([p.groups]) } : {}),
        ...(p.claims ? (JSON.parse(p.claims) as Record<string, unknown>) : {}),
      };
    },
    ttl: { ClientCredentials: 3600 },
    formats: {
      customizers: {
        // ...and the subject becomes the chosen user, not the client.
        jwt: (_ctx: unknown, _token: unknown, jwt: { payload: Record<string, unknown> }) => {
          const user = jwt.payload.gatehouse_user;
          if (typeof user === 'string') jwt.payload.sub = user;
          delete jwt.payload.gatehouse_user;
        },
      },
    },
  } as never);
  provider.registerGrantType(
    LOCAL_USER_GRANT,
    async (ctx: any) => {
      const { user, groups, claims } = ctx.oidc.params as { user?: string; groups?: string; claims?: string };
      const refuse = (description: string) => {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', error_description: description };
      };
      if (!user || !/^[A-Za-z0-9._@|+-]{1,128}$/.test(user)) return refuse('user is required (letters, digits, . _ @ | + -)');
      try {
        if (groups !== undefined) parseGroups([groups]);
        if (claims !== undefined) {
          const parsed = JSON.parse(claims) as unknown;
          if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('claims must be a JSON object');
          checkExtraClaims(parsed as Record<string, unknown>);
        }
      } catch (err) {
        return refuse((err as Error).message);
      }
      const token = new provider.ClientCredentials({ client: ctx.oidc.client, scope: 'api' });
      token.resourceServer = new provider.ResourceServer(LOCAL_AUDIENCE, { scope: 'api', audience: LOCAL_AUDIENCE, accessTokenFormat: 'jwt', accessTokenTTL: 3600, jwt: { sign: { alg: 'RS256' } } });
      const value = await token.save();
      ctx.body = { access_token: value, token_type: 'Bearer', expires_in: token.expiration };
    },
    ['user', 'email', 'groups', 'claims'],
  );
  delegate = provider.callback();
  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    tokenUrl: `${issuer}/token`,
    config: { issuer, audience: LOCAL_AUDIENCE, jwksUri: `${issuer}/jwks`, algorithms: ['RS256'], trustEmail: false },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * What a client of the local issuer needs (`npm run token`), without loading
 * `oidc-provider`: the local grant, client credentials and audience, and the request.
 */
/** The grant a newcomer uses to get a token for a chosen user (local development only). */
export const LOCAL_USER_GRANT = 'urn:gatehouse:params:grant-type:local-user';
export const LOCAL_CLIENT_ID = 'gatehouse-local';
export const LOCAL_CLIENT_SECRET = 'gatehouse-local-secret';
export const LOCAL_AUDIENCE = 'gatehouse';

/** Asks a running local issuer for a token for `user` (what `npm run token` does). */
export async function fetchLocalToken(tokenUrl: string, user: string, email?: string): Promise<string> {
  const body = new URLSearchParams({ grant_type: LOCAL_USER_GRANT, client_id: LOCAL_CLIENT_ID, client_secret: LOCAL_CLIENT_SECRET, user, ...(email ? { email } : {}) });
  const res = await fetch(tokenUrl, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !json.access_token) throw new Error(`token request failed: ${res.status} ${json.error ?? ''} ${json.error_description ?? ''}`.trim());
  return json.access_token;
}

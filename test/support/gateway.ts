/** One answer of the local gateway, and who gave it. */
export interface GatewayAnswer {
  status: number;
  /** The gateway itself (authorizer 401/403/500, 404, 413: `{ message }`, as API Gateway answers) or the integration. */
  by: 'gateway' | 'integration';
  body: unknown;
  etag?: string;
}

/** A request through the local gateway at `url` (e2e tests): `body` is sent as is, with a JSON content type. */
export async function callGateway(url: string, method: string, path: string, o: { authorization?: string; body?: string; headers?: Record<string, string> } = {}): Promise<GatewayAnswer> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...(o.authorization !== undefined ? { authorization: o.authorization } : {}), ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
    ...(o.body !== undefined ? { body: o.body } : {}),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  // The gateway answers `{ message }`; the functions `{ error }` or their object, the demo `{ method, path, context }`.
  const by = json && typeof json === 'object' && 'message' in json && Object.keys(json).length === 1 ? 'gateway' : 'integration';
  const etag = res.headers.get('etag');
  return { status: res.status, by, body: json, ...(etag ? { etag } : {}) };
}

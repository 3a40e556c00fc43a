/** A parsed execute-api ARN (REST `methodArn`, HTTP API `routeArn`, WebSocket `methodArn`). */
export interface MethodArn {
  partition: string;
  region: string;
  account: string;
  apiId: string;
  stage: string;
  /** HTTP method; `GET` for a WebSocket route key such as `$connect`. */
  method: string;
  /** Resource path starting with `/` (WebSocket: `/<routeKey>`). */
  path: string;
  /** `arn:<partition>:execute-api:<region>:<account>:<apiId>/<stage>`: what IAM resources are built on. */
  prefix: string;
}

const PART = /^[a-z0-9-]{1,32}$/;
const API_ID = /^[A-Za-z0-9]{1,64}$/;
const STAGE = /^[A-Za-z0-9_$-]{1,128}$/;
const METHOD = /^([A-Z]{1,10}|\*)$/;

/**
 * Parses `arn:{partition}:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path…}`
 * (or `…/{stage}/{$routeKey}` for WebSocket). Only the first five colons separate
 * fields: the path may contain colons and odd characters. Never throws; undefined
 * for anything malformed.
 */
export function parseMethodArn(arn: unknown): MethodArn | undefined {
  if (typeof arn !== 'string' || arn.length > 4096) return undefined;
  const fields: string[] = [];
  let rest = arn;
  for (let i = 0; i < 5; i++) {
    const c = rest.indexOf(':');
    if (c < 0) return undefined;
    fields.push(rest.slice(0, c));
    rest = rest.slice(c + 1);
  }
  const [arnWord, partition, service, region, account] = fields as [string, string, string, string, string];
  if (arnWord !== 'arn' || service !== 'execute-api' || !PART.test(partition) || !PART.test(region) || !/^\d{1,12}$/.test(account)) return undefined;
  const slash1 = rest.indexOf('/');
  if (slash1 < 0) return undefined;
  const apiId = rest.slice(0, slash1);
  const afterApi = rest.slice(slash1 + 1);
  const slash2 = afterApi.indexOf('/');
  if (slash2 < 0) return undefined;
  const stage = afterApi.slice(0, slash2);
  const tail = afterApi.slice(slash2 + 1);
  if (!API_ID.test(apiId) || !STAGE.test(stage) || tail === '') return undefined;
  const prefix = `arn:${partition}:execute-api:${region}:${account}:${apiId}/${stage}`;
  if (tail.startsWith('$')) {
    // WebSocket route key, e.g. $connect: modelled as GET /$connect.
    if (!/^\$[A-Za-z0-9_-]{1,64}$/.test(tail)) return undefined;
    return { partition, region, account, apiId, stage, method: 'GET', path: `/${tail}`, prefix };
  }
  const slash3 = tail.indexOf('/');
  const method = slash3 < 0 ? tail : tail.slice(0, slash3);
  const path = slash3 < 0 ? '/' : tail.slice(slash3);
  if (!METHOD.test(method) || method === '*') return undefined;
  return { partition, region, account, apiId, stage, method, path, prefix };
}

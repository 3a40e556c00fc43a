/// <reference path="../.sst/platform/config.d.ts" />
import { ADMIN_ROUTES } from '../functions/routes';
import type { Functions } from './functions';

/**
 * The admin HTTP API. Every route sits behind the gatehouse HTTP authorizer (simple
 * responses). Its cache key includes the route (`$context.routeKey`), because a simple
 * answer is a yes/no that API Gateway would otherwise reuse for every route; with the
 * route in the key a 60 s TTL is safe, and revocations or policy changes reach callers
 * within 60 s + GATEHOUSE_CACHE_TTL_SECONDS.
 */
export function adminApi(fns: Functions) {
  const api = new sst.aws.ApiGatewayV2('AdminApi');
  const authorizer = api.addAuthorizer({
    name: 'gatehouse',
    lambda: {
      function: fns.http.arn,
      identitySources: ['$request.header.Authorization', '$context.routeKey'],
      ttl: '60 seconds',
      response: 'simple',
      payload: '2.0',
    },
  });
  for (const [route, fn] of Object.entries(ADMIN_ROUTES)) {
    api.route(route, fns[fn].arn, { auth: { lambda: authorizer.id } });
  }
  return api;
}

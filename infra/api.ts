/// <reference path="../.sst/platform/config.d.ts" />
import { ADMIN_ROUTES } from '../functions/routes';
import type { Functions } from './functions';
import { ADMIN_AUTHORIZER } from './handlers';

/** The admin HTTP API: every route of the one route list, behind the gatehouse HTTP authorizer pinned to the `admin` policy set. */
export function adminApi(fns: Functions) {
  const api = new sst.aws.ApiGatewayV2('AdminApi');
  const authorizer = api.addAuthorizer({
    name: 'gatehouse',
    lambda: {
      function: fns.adminAuthorizer.arn,
      identitySources: [...ADMIN_AUTHORIZER.identitySources],
      ttl: ADMIN_AUTHORIZER.ttl,
      response: 'iam',
      payload: '2.0',
    },
  });
  for (const [route, fn] of Object.entries(ADMIN_ROUTES)) {
    api.route(route, fns[fn].arn, { auth: { lambda: authorizer.id } });
  }
  return api;
}

import { OrgAdmin } from '../core/admin/orgs';
import { PolicyAdmin } from '../core/admin/policies';
import { createHttpAuthorizer, createRestAuthorizer, createWebSocketAuthorizer } from '../core/gateway/handlers';
import { createApi, type Endpoint } from '../core/http/api';
import { InvitationService } from '../core/invitations/service';
import { TokenService } from '../core/tokens/service';
import type { Runtime } from './runtime';

/**
 * Every handler, built from a runtime. The Lambda modules in this folder build them
 * from the container's runtime; the local stack builds them from its own.
 */
export function buildHandlers(rt: Runtime) {
  const gateway = rt.gateway;
  const api = (name: string, routes: Record<string, Endpoint>) =>
    createApi({ name, routes, resolveCaller: (ctx) => rt.callers.fromContext(ctx), logger: rt.logger });
  return {
    rest: createRestAuthorizer(gateway),
    http: createHttpAuthorizer({ ...gateway, mode: rt.settings.httpResponse }),
    httpIam: createHttpAuthorizer({ ...gateway, mode: 'iam' }),
    websocket: createWebSocketAuthorizer(gateway),
    tokens: api('tokens', new TokenService(rt).routes()),
    invitations: api('invitations', new InvitationService(rt).routes()),
    admin: api('admin', { ...new OrgAdmin(rt).routes(), ...new PolicyAdmin(rt).routes() }),
  };
}

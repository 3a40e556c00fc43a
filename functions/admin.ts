import { OrgAdmin } from '../core/admin/orgs';
import { PolicyAdmin } from '../core/admin/policies';
import { createApi } from '../core/http/api';
import { runtime } from './runtime';

const rt = runtime();

/** Organizations, members, roles, policies, explain, audit, me: see DESIGN §6, Admin. */
export const handler = createApi({
  name: 'admin',
  routes: { ...new OrgAdmin(rt).routes(), ...new PolicyAdmin(rt).routes() },
  resolveCaller: (ctx) => rt.callers.fromContext(ctx),
  logger: rt.logger,
});

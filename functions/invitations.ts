import { createApi } from '../core/http/api';
import { InvitationService } from '../core/invitations/service';
import { runtime } from './runtime';

const rt = runtime();

/** Organization invitations over the HTTP API (v2): see DESIGN §6, Invitations. */
export const handler = createApi({
  name: 'invitations',
  routes: new InvitationService(rt).routes(),
  resolveCaller: (ctx) => rt.callers.fromContext(ctx),
  logger: rt.logger,
});

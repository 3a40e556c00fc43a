import { createApi } from '../core/http/api';
import { TokenService } from '../core/tokens/service';
import { runtime } from './runtime';

const rt = runtime();

/** Token CRUD over the HTTP API (v2): see DESIGN §6, Tokens. */
export const handler = createApi({
  name: 'tokens',
  routes: new TokenService(rt).routes(),
  resolveCaller: (ctx) => rt.callers.fromContext(ctx),
  logger: rt.logger,
});

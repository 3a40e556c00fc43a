import { buildHandlers } from './apps';
import { lambda } from './lambda';
import { runtime } from './runtime';

// Built at module scope: configuration errors fail the cold start; clients live across warm invocations.
const rt = runtime();

/** tokens over the HTTP API (v2): see DESIGN §6. Logs carry Lambda's and API Gateway's request ids; metrics are written per invocation. */
export const handler = lambda(rt, 'tokens', buildHandlers(rt).tokens);

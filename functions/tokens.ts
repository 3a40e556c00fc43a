import { buildHandlers } from './apps';
import { runtime } from './runtime';

/** tokens over the HTTP API (v2): see DESIGN §6. Built at module scope, once per container. */
export const handler = buildHandlers(runtime()).tokens;

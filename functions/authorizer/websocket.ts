import { createWebSocketAuthorizer } from '../../core/gateway/handlers';
import { lambda } from '../lambda';
import { authorizerRuntime } from './runtime';

// Built at module scope: configuration errors fail the cold start; caches live across warm invocations.
const rt = authorizerRuntime();

/** WebSocket `$connect` REQUEST authorizer (token also accepted from `Sec-WebSocket-Protocol`). */
export const handler = lambda(rt, 'websocket', createWebSocketAuthorizer(rt.gateway));

import { createRestAuthorizer } from '../../core/gateway/handlers';
import { lambda } from '../lambda';
import { authorizerRuntime } from './runtime';

// Built at module scope: configuration errors fail the cold start; caches live across warm invocations.
const rt = authorizerRuntime();

/** REST API (v1) TOKEN and REQUEST authorizer. */
export const handler = lambda(rt, 'rest', createRestAuthorizer(rt.gateway));

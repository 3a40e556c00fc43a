import { createHttpAuthorizer } from '../../core/gateway/handlers';
import { lambda } from '../lambda';
import { authorizerRuntime } from './runtime';

// Built at module scope: configuration errors fail the cold start; caches live across warm invocations.
const rt = authorizerRuntime();

/** HTTP API (v2) REQUEST authorizer, payload 2.0: simple response (default) or IAM (`GATEHOUSE_HTTP_RESPONSE=iam`). */
export const handler = lambda(rt, 'http', createHttpAuthorizer({ ...rt.gateway, mode: rt.settings.httpResponse }));

import { createHash } from 'node:crypto';
import type { AuthzRequest } from '../authorizer/context';
import type { Authorizer, AuthzResult } from '../authorizer/authorize';
import { computeEntitlements, entitledResources } from '../authorizer/entitlements';
import { LruCache } from '../cache/lru';
import type { Logger } from '../log';
import { parseMethodArn, type MethodArn } from './arn';
import { fromHttpV2, fromRestRequest, fromRestToken, fromWebSocketConnect, type HttpRequestEventV2, type RestRequestEvent, type RestTokenEvent } from './events';
import { buildIamPolicy, fitPolicy, flattenContext, type IamAuthorizerResponse } from './iam';

/** A result that carries a decision (allow or deny). */
type Decided = Extract<AuthzResult, { explanation: unknown }>;

/** The exact error API Gateway maps to 401 for REST and WebSocket authorizers. */
export const UNAUTHORIZED = 'Unauthorized';
/** Thrown when the authorizer cannot decide (store or key source down): API Gateway answers 500. */
export const AUTHORIZER_FAILURE = 'Authorizer failure';

export interface GatewayDeps {
  authorizer: Authorizer;
  logger: Logger;
  now?: () => number;
  cacheTtlSeconds?: number;
}

export interface HttpSimpleResponse {
  isAuthorized: boolean;
  context?: Record<string, string | number | boolean>;
}

/**
 * Shared decision step of every flavour: decide, log (reason code, never the
 * credential), and for an Allow compute the cache-correct resource list.
 */
class Decider {
  private readonly lists: LruCache<string, { resources: string[]; omitted: string[]; perRequest: boolean }>;
  private readonly now: () => number;
  private readonly ttlMs: number;

  constructor(private readonly deps: GatewayDeps) {
    this.now = deps.now ?? Date.now;
    this.ttlMs = (deps.cacheTtlSeconds ?? 30) * 1000;
    this.lists = new LruCache({ maxEntries: 5000, now: this.now });
  }

  async run(flavour: string, request: AuthzRequest, arn: MethodArn | undefined): Promise<AuthzResult> {
    const result = await this.deps.authorizer.authorize(request);
    const fields: Record<string, unknown> = { flavour, effect: result.effect, reason: result.code, method: request.method, path: request.path.slice(0, 256) };
    if (result.effect === 'allow' || result.effect === 'deny') {
      fields.principalId = result.context.principalId;
      if (result.token) fields.tokenId = result.token.id;
      if (result.match) fields.route = result.match.rule.route;
      fields.policyVersion = result.policy.version;
    }
    if (arn) fields.apiId = arn.apiId;
    if (result.effect === 'error') this.deps.logger.error('authorizer.decision', fields);
    else this.deps.logger.info('authorizer.decision', fields);
    return result;
  }

  /** Every ARN the principal may use on this API and stage (cached per credential and policy version). */
  allowList(result: Decided, request: AuthzRequest, arn: MethodArn, currentArn: string): string[] {
    const key = `${result.policy.version}|${arn.prefix}|${request.credential ? createHash('sha256').update(request.credential).digest('base64url') : 'anonymous'}`;
    let cached = this.lists.get(key);
    if (!cached) {
      const { entitlements, perRequest } = computeEntitlements(result.policy, result.principal, request, this.now());
      const { resources, omitted } = perRequest ? { resources: [], omitted: [] } : entitledResources(result.policy, entitlements, arn);
      cached = { resources, omitted, perRequest };
      this.lists.set(key, cached, this.ttlMs);
      if (omitted.length > 0) this.deps.logger.info('authorizer.entitlements-omitted', { principalId: result.context.principalId, routes: omitted.slice(0, 20), count: omitted.length });
    }
    return [currentArn, ...cached.resources.filter((r) => r !== currentArn)];
  }

  iam(result: AuthzResult, request: AuthzRequest, arn: MethodArn, currentArn: string): IamAuthorizerResponse {
    if (result.effect !== 'allow' && result.effect !== 'deny') throw new Error('unreachable');
    const context = flattenContext(result.context);
    const principalId = String(result.context.principalId);
    if (result.effect === 'deny') {
      // A Deny names the current ARN only, so a cached Deny never blocks other routes.
      return buildIamPolicy({ principalId, effect: 'Deny', resources: [currentArn], context });
    }
    const resources = this.allowList(result, request, arn, currentArn);
    const fitted = fitPolicy(resources, currentArn, (r: string[]) => buildIamPolicy({ principalId, effect: 'Allow', resources: r, context }));
    if (fitted.truncated) {
      this.deps.logger.warn('authorizer.policy-too-large', { principalId, routes: resources.length });
    }
    return fitted.response;
  }
}

function fail(result: AuthzResult): never {
  throw new Error(result.effect === 'unauthorized' ? UNAUTHORIZED : AUTHORIZER_FAILURE);
}

function arnOrFail(logger: Logger, value: unknown): MethodArn {
  const arn = typeof value === 'string' ? parseMethodArn(value) : undefined;
  if (!arn) {
    logger.error('authorizer.decision', { effect: 'error', reason: 'invalid-method-arn' });
    throw new Error(AUTHORIZER_FAILURE);
  }
  return arn;
}

/** REST API (v1) TOKEN and REQUEST authorizer: an IAM policy, 401 as `Error("Unauthorized")`. */
export function createRestAuthorizer(deps: GatewayDeps) {
  const decider = new Decider(deps);
  return async (event: RestTokenEvent | RestRequestEvent): Promise<IamAuthorizerResponse> => {
    const arn = arnOrFail(deps.logger, event?.methodArn);
    const request = event.type === 'TOKEN' ? fromRestToken(event, arn) : fromRestRequest(event as RestRequestEvent, arn);
    const result = await decider.run(event.type === 'TOKEN' ? 'rest-token' : 'rest-request', request, arn);
    if (result.effect !== 'allow' && result.effect !== 'deny') fail(result);
    return decider.iam(result, request, arn, event.methodArn as string);
  };
}

/** WebSocket `$connect` authorizer: an IAM policy for the connect route. */
export function createWebSocketAuthorizer(deps: GatewayDeps) {
  const decider = new Decider(deps);
  return async (event: RestRequestEvent): Promise<IamAuthorizerResponse> => {
    const arn = arnOrFail(deps.logger, event?.methodArn);
    const request = fromWebSocketConnect(event);
    const result = await decider.run('websocket', request, arn);
    if (result.effect !== 'allow' && result.effect !== 'deny') fail(result);
    const context = flattenContext(result.context);
    const principalId = String(result.context.principalId);
    // One route per WebSocket authorizer: the answer is about $connect only.
    return buildIamPolicy({ principalId, effect: result.effect === 'allow' ? 'Allow' : 'Deny', resources: [event.methodArn as string], context });
  };
}

/**
 * HTTP API (v2) REQUEST authorizer, payload 2.0. `simple`: `{ isAuthorized, context }`
 * (401 and failures are `isAuthorized: false`); `iam`: an IAM policy like REST.
 */
export function createHttpAuthorizer(deps: GatewayDeps & { mode: 'simple' | 'iam' }) {
  const decider = new Decider(deps);
  return async (event: HttpRequestEventV2): Promise<HttpSimpleResponse | IamAuthorizerResponse> => {
    const arn = typeof event?.routeArn === 'string' ? parseMethodArn(event.routeArn) : undefined;
    if (!arn) {
      deps.logger.error('authorizer.decision', { effect: 'error', reason: 'invalid-route-arn', flavour: 'http' });
      if (deps.mode === 'simple') return { isAuthorized: false };
      throw new Error(AUTHORIZER_FAILURE);
    }
    const request = fromHttpV2(event, arn);
    const result = await decider.run('http', request, arn);
    if (deps.mode === 'simple') {
      if (result.effect !== 'allow' && result.effect !== 'deny') return { isAuthorized: false };
      return { isAuthorized: result.effect === 'allow', context: flattenContext(result.context) };
    }
    if (result.effect !== 'allow' && result.effect !== 'deny') fail(result);
    return decider.iam(result, request, arn, event.routeArn as string);
  };
}

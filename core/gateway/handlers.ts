import type { Authorizer, AuthzResult } from '../authorizer/authorize';
import type { AuthzRequest } from '../authorizer/context';
import type { Logger } from '../log';
import type { IamAnswers } from './answers';
import { parseMethodArn, type MethodArn } from './arn';
import { fromHttpV2, fromRestRequest, fromRestToken, fromWebSocketConnect, type HttpRequestEventV2, type RestRequestEvent, type RestTokenEvent } from './events';
import { flattenContext, iamPolicy, statement, type IamAuthorizerResponse } from './iam';
import type { RepeatedAnswers } from './repeats';

/** The exact error API Gateway maps to 401 for REST and WebSocket authorizers. */
export const UNAUTHORIZED = 'Unauthorized';
/** Thrown when the authorizer cannot decide (store or key source down): API Gateway answers 500. */
export const AUTHORIZER_FAILURE = 'Authorizer failure';

export interface GatewayDeps {
  authorizer: Authorizer;
  answers: IamAnswers;
  /** Answers already given, for repeated requests (IAM answers only). */
  repeats: RepeatedAnswers;
  logger: Logger;
}

export interface HttpSimpleResponse {
  isAuthorized: boolean;
  context?: Record<string, string | number | boolean>;
}

/**
 * REST API (v1) TOKEN and REQUEST authorizer: event -> request -> decision -> IAM
 * answer. A 401 is exactly `Error("Unauthorized")`; a failure to decide throws
 * `Error("Authorizer failure")` (API Gateway answers 500), never an Allow.
 */
export function createRestAuthorizer(deps: GatewayDeps) {
  return async (event: RestTokenEvent | RestRequestEvent): Promise<IamAuthorizerResponse> => {
    const flavour = event?.type === 'TOKEN' ? 'rest-token' : 'rest-request';
    const arn = arnOrFail(deps.logger, flavour, event?.methodArn);
    const request = event.type === 'TOKEN' ? fromRestToken(event, arn) : fromRestRequest(event as RestRequestEvent, arn);
    return iamAnswer(deps, flavour, request, arn, event.methodArn as string);
  };
}

/**
 * Request -> decision -> IAM answer, for `currentArn`. A repeated request gets the answer
 * already given to it while that still holds (`RepeatedAnswers`); anything else is decided.
 */
async function iamAnswer(deps: GatewayDeps, flavour: string, request: AuthzRequest, arn: MethodArn, currentArn: string): Promise<IamAuthorizerResponse> {
  const key = deps.repeats.key(flavour, request, currentArn);
  const repeat = deps.repeats.get(key);
  const result = repeat ? await deps.authorizer.repeated(repeat.result, request) : await deps.authorizer.authorize(request);
  logDecision(deps.logger, flavour, request, arn, result, repeat !== undefined);
  if (result.effect === 'unauthorized' || result.effect === 'error') fail(result);
  return repeat?.answer ?? deps.repeats.remember(key, result, deps.answers.answer(result, request, arn, currentArn));
}

/** WebSocket `$connect` authorizer: an IAM policy for the connect route only. */
export function createWebSocketAuthorizer(deps: GatewayDeps) {
  return async (event: RestRequestEvent): Promise<IamAuthorizerResponse> => {
    const arn = arnOrFail(deps.logger, 'websocket', event?.methodArn);
    const request = fromWebSocketConnect(event, arn);
    const result = await deps.authorizer.authorize(request);
    logDecision(deps.logger, 'websocket', request, arn, result);
    if (result.effect === 'unauthorized' || result.effect === 'error') fail(result);
    // One route per WebSocket authorizer: the answer is about $connect only.
    return iamPolicy(String(result.context.principalId), [statement(result.effect === 'allow' ? 'Allow' : 'Deny', [event.methodArn as string])], flattenContext(result.context));
  };
}

/**
 * HTTP API (v2) REQUEST authorizer, payload 2.0. `simple`: `{ isAuthorized, context }`
 * (401 and failures are `isAuthorized: false`); `iam`: an IAM policy like REST.
 */
export function createHttpAuthorizer(deps: GatewayDeps & { mode: 'simple' | 'iam' }) {
  return async (event: HttpRequestEventV2): Promise<HttpSimpleResponse | IamAuthorizerResponse> => {
    const arn = typeof event?.routeArn === 'string' ? parseMethodArn(event.routeArn) : undefined;
    if (!arn) {
      deps.logger.error('authorizer.decision', { flavour: 'http', effect: 'error', reason: 'invalid-route-arn' });
      if (deps.mode === 'simple') return { isAuthorized: false };
      throw new Error(AUTHORIZER_FAILURE);
    }
    const request = fromHttpV2(event, arn);
    if (deps.mode === 'iam') return iamAnswer(deps, 'http', request, arn, event.routeArn as string);
    const result = await deps.authorizer.authorize(request);
    logDecision(deps.logger, 'http', request, arn, result);
    if (result.effect === 'unauthorized' || result.effect === 'error') return { isAuthorized: false };
    return { isAuthorized: result.effect === 'allow', context: flattenContext(result.context) };
  };
}

function arnOrFail(logger: Logger, flavour: string, value: unknown): MethodArn {
  const arn = typeof value === 'string' ? parseMethodArn(value) : undefined;
  if (!arn) {
    logger.error('authorizer.decision', { flavour, effect: 'error', reason: 'invalid-method-arn' });
    throw new Error(AUTHORIZER_FAILURE);
  }
  return arn;
}

function fail(result: AuthzResult): never {
  throw new Error(result.effect === 'unauthorized' ? UNAUTHORIZED : AUTHORIZER_FAILURE);
}

/**
 * One `authorizer.decision` line per request, `repeated` for an answer given again: the
 * reason code, never the credential. Failures at error level.
 */
function logDecision(logger: Logger, flavour: string, request: AuthzRequest, arn: MethodArn, result: AuthzResult, repeated = false): void {
  const level = result.effect === 'error' ? 'error' : 'info';
  if (logger.enabled && !logger.enabled(level)) return;
  const fields: Record<string, unknown> = { flavour, effect: result.effect, reason: result.code, method: request.method, path: request.path.slice(0, 256), apiId: arn.apiId };
  if (result.effect === 'allow' || result.effect === 'deny') {
    fields.principalId = result.context.principalId;
    if (result.token) fields.tokenId = result.token.id;
    if (result.decision.route !== undefined) fields.route = result.decision.route;
    fields.policySet = result.policy.set;
    fields.policyVersion = result.policy.version;
    if (repeated) fields.repeated = true;
  }
  logger[level]('authorizer.decision', fields);
}

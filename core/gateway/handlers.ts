import type { Authorizer, AuthzResult } from '../authorizer/authorize';
import type { AuthzRequest } from '../authorizer/context';
import type { Logger } from '../log';
import type { IamAnswers } from './answers';
import { parseMethodArn, type MethodArn } from './arn';
import { fromHttpV2, fromRestRequest, fromRestToken, fromWebSocketConnect, tokenDigest, tokenRoute, type HttpRequestEventV2, type RestRequestEvent, type RestTokenEvent } from './events';
import { answerContext, iamPolicy, principalIdOf, statement, type IamAuthorizerResponse } from './iam';
import type { Repeat, RepeatedAnswers } from './repeats';

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
    if (event?.type === 'TOKEN') {
      // A TOKEN event is a credential and a method ARN, nothing else: the same two, as
      // sent, are the same request, known before either is parsed (a repeat costs one hash).
      const key = deps.repeats.key('rest-token', tokenDigest(event), event.methodArn);
      const repeat = deps.repeats.get(key);
      if (repeat) return answerAgain(deps, 'rest-token', repeat, tokenRoute(repeat.arn));
      const arn = arnOrFail(deps.logger, 'rest-token', event.methodArn);
      return decideAndAnswer(deps, 'rest-token', fromRestToken(event, arn), arn, event.methodArn as string, key);
    }
    const arn = arnOrFail(deps.logger, 'rest-request', event?.methodArn);
    return iamAnswer(deps, 'rest-request', fromRestRequest(event as RestRequestEvent, arn), arn, event.methodArn as string);
  };
}

/**
 * The IAM answer to a request that carries more than its credential (REST REQUEST, HTTP
 * API): a repeat is the same credential asking about the same ARN (the key holds what the
 * request carries, parsed), and gets the answer already given while that still holds.
 */
async function iamAnswer(deps: GatewayDeps, flavour: string, request: AuthzRequest, arn: MethodArn, currentArn: string): Promise<IamAuthorizerResponse> {
  const key = deps.repeats.key(flavour, request.credentialDigest, currentArn);
  const repeat = deps.repeats.get(key);
  return repeat ? answerAgain(deps, flavour, repeat, request) : decideAndAnswer(deps, flavour, request, arn, currentArn, key);
}

/** Request -> decision -> IAM answer for `currentArn`, kept under `key` when it may be given again. */
async function decideAndAnswer(deps: GatewayDeps, flavour: string, request: AuthzRequest, arn: MethodArn, currentArn: string, key: string | undefined): Promise<IamAuthorizerResponse> {
  const result = await deps.authorizer.authorize(request);
  logDecision(deps.logger, flavour, request, arn, result);
  if (result.effect === 'unauthorized' || result.effect === 'error') fail(result);
  return deps.repeats.remember(key, { result, arn, answer: deps.answers.answer(result, request, arn, currentArn) });
}

/** An answer given again: logged, and its token's use recorded, as for a new decision. */
async function answerAgain(deps: GatewayDeps, flavour: string, repeat: Repeat, request: AuthzRequest): Promise<IamAuthorizerResponse> {
  const result = await deps.authorizer.repeated(repeat.result, request);
  logDecision(deps.logger, flavour, request, repeat.arn, result, true);
  if (result.effect === 'unauthorized' || result.effect === 'error') fail(result);
  return repeat.answer;
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
    return iamPolicy(principalIdOf(result.principal), [statement(result.effect === 'allow' ? 'Allow' : 'Deny', [event.methodArn as string])], answerContext(result));
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
    return { isAuthorized: result.effect === 'allow', context: answerContext(result) };
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
    fields.principalId = principalIdOf(result.principal);
    if (result.token) fields.tokenId = result.token.id;
    if (result.decision.route !== undefined) fields.route = result.decision.route;
    fields.policySet = result.policy.set;
    fields.policyVersion = result.policy.version;
    if (repeated) fields.repeated = true;
  }
  logger[level]('authorizer.decision', fields);
}

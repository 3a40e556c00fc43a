import type { Decided } from '../authorizer/authorize';
import type { Principal } from '../rbac/types';

/** One statement of an authorizer's IAM policy. */
export interface IamStatement {
  Action: 'execute-api:Invoke';
  Effect: 'Allow' | 'Deny';
  Resource: string[];
}

/** The IAM answer of REST, WebSocket and HTTP-IAM Lambda authorizers. */
export interface IamAuthorizerResponse {
  principalId: string;
  policyDocument: { Version: '2012-10-17'; Statement: IamStatement[] };
  context?: Record<string, string | number | boolean>;
}

/**
 * API Gateway's quotas list 8 KB for a Lambda authorizer's result (stated for
 * WebSocket APIs; REST APIs are reported to accept more). One limit for every
 * flavour, with a margin below the strictest: larger answers cover the current
 * route only.
 */
export const MAX_POLICY_BYTES = 7 * 1024;
const MAX_CONTEXT_STRING = 1024;

/** A statement on `resources` (duplicates dropped). */
export function statement(effect: IamStatement['Effect'], resources: readonly string[]): IamStatement {
  return { Action: 'execute-api:Invoke', Effect: effect, Resource: [...new Set(resources)] };
}

/** An authorizer's IAM answer. */
export function iamPolicy(principalId: string, statements: IamStatement[], context?: Record<string, string | number | boolean>): IamAuthorizerResponse {
  const out: IamAuthorizerResponse = { principalId, policyDocument: { Version: '2012-10-17', Statement: statements } };
  if (context) out.context = context;
  return out;
}

/** Keeps only values API Gateway accepts in an authorizer context: strings, finite numbers, booleans. */
export function flattenContext(values: Record<string, unknown>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const k of Object.keys(values)) {
    const v = values[k];
    if (typeof v === 'string') out[k] = v.length > MAX_CONTEXT_STRING ? v.slice(0, MAX_CONTEXT_STRING) : v;
    else if (typeof v === 'boolean') out[k] = v;
    else if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  }
  return out;
}

/** Characters of an answer's strings (its size in memory, roughly halved; 1 KiB above is for the decision and request). */
export function answerChars(answer: IamAuthorizerResponse): number {
  let n = answer.principalId.length;
  for (const s of answer.policyDocument.Statement) for (const r of s.Resource) n += r.length + 16;
  const context = answer.context ?? {};
  for (const k in context) n += k.length + String(context[k]).length + 16;
  return n;
}

/** Freezes an answer and everything in it (its shape is fixed: `iamPolicy`). */
export function freezeAnswer(answer: IamAuthorizerResponse): void {
  for (const s of answer.policyDocument.Statement) Object.freeze(Object.freeze(s).Resource);
  Object.freeze(Object.freeze(answer.policyDocument).Statement);
  if (answer.context) Object.freeze(answer.context);
  Object.freeze(answer);
}

/** The principal id of an answer: the principal's, or `anonymous`. */
export function principalIdOf(principal: Principal | undefined): string {
  return principal ? principal.id : 'anonymous';
}

/** The context of a decided request's answer: `gatewayContext` of its principal and token, as API Gateway accepts it. */
export function answerContext(result: Pick<Decided, 'principal' | 'token'>): Record<string, string | number | boolean> {
  return flattenContext(gatewayContext(result.principal, result.token?.id));
}

/** API Gateway context values: flat strings, numbers and booleans only (DESIGN §5). */
type GatewayContext = Record<string, string | number | boolean>;

/** The context handed to API Gateway, built from the decided principal (and token id). Unverified claims never become authorization data. */
function gatewayContext(principal: Principal | undefined, tokenId?: string): GatewayContext {
  if (!principal) return { principalId: 'anonymous', kind: 'anonymous' };
  const ctx: GatewayContext = {
    principalId: principal.id,
    kind: principal.token ? 'token' : 'user',
    orgIds: Object.keys(principal.orgs).sort().join(','),
    siteRoles: principal.siteRoles.join(','),
  };
  if (principal.kind === 'user') ctx.userId = principal.id;
  if (tokenId) ctx.tokenId = tokenId;
  if (principal.email !== undefined && principal.emailVerified) ctx.email = principal.email;
  return ctx;
}

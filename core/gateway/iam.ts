/** The IAM answer of REST, WebSocket and HTTP-IAM Lambda authorizers. */
export interface IamAuthorizerResponse {
  principalId: string;
  policyDocument: {
    Version: '2012-10-17';
    Statement: { Action: 'execute-api:Invoke'; Effect: 'Allow' | 'Deny'; Resource: string[] }[];
  };
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

export function buildIamPolicy(input: {
  principalId: string;
  effect: 'Allow' | 'Deny';
  resources: readonly string[];
  context?: Record<string, string | number | boolean>;
}): IamAuthorizerResponse {
  return {
    principalId: input.principalId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: input.effect, Resource: [...new Set(input.resources)] }],
    },
    ...(input.context ? { context: input.context } : {}),
  };
}

/** Bytes of the answer as API Gateway receives it. */
export function policySize(response: IamAuthorizerResponse): number {
  return Buffer.byteLength(JSON.stringify(response), 'utf8');
}

/**
 * Builds the Allow for every entitled resource; when that would not fit, answers
 * for the current ARN only (`truncated`, to be logged).
 */
export function fitPolicy(
  resources: readonly string[],
  current: string,
  build: (resources: string[]) => IamAuthorizerResponse,
): { response: IamAuthorizerResponse; truncated: boolean } {
  const full = build([...resources]);
  if (policySize(full) <= MAX_POLICY_BYTES) return { response: full, truncated: false };
  return { response: build([current]), truncated: true };
}

/** Keeps only values API Gateway accepts in an authorizer context: strings, finite numbers, booleans. */
export function flattenContext(values: Record<string, unknown>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(values)) {
    if (typeof v === 'string') out[k] = v.length > MAX_CONTEXT_STRING ? v.slice(0, MAX_CONTEXT_STRING) : v;
    else if (typeof v === 'boolean') out[k] = v;
    else if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  }
  return out;
}

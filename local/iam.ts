/** IAM policy evaluation as API Gateway applies a cached authorizer answer (the local gateway and the tests use it). */
/**
 * How API Gateway applies a cached IAM policy to another request: an explicit Deny
 * on a matching resource wins, else any matching Allow, else deny. `*` in a
 * resource matches any run of characters (including `/`), `?` one character.
 */
export interface PolicyLike {
  policyDocument: { Statement: { Effect: string; Resource: string | string[]; Action?: string | string[] }[] };
}

function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (const ch of glob) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$', 's');
}

export function iamAllows(policy: PolicyLike, arn: string): boolean {
  let allowed = false;
  for (const st of policy.policyDocument.Statement) {
    const resources = Array.isArray(st.Resource) ? st.Resource : [st.Resource];
    if (!resources.some((r) => globToRegExp(r).test(arn))) continue;
    if (st.Effect === 'Deny') return false;
    if (st.Effect === 'Allow') allowed = true;
  }
  return allowed;
}

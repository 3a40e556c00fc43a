import { evaluateExpression } from '../policy/expression';
import { resolveBinding, type RouteMatch } from '../policy/routes';
import { decide as decideRoles } from '../rbac/decide';
import { withoutDeletingOrgs } from '../rbac/deleting-orgs';
import type { AuthzObject, Decision as RoleDecision, Principal, Reason } from '../rbac/types';
import { expressionContext, type AuthzRequest } from './context';
import type { CompiledPolicy, ExpressionSlot } from './policy';

/** What a request is decided on: everything the authorizer read from it but the credential. */
export type DecisionRequest = Pick<AuthzRequest, 'method' | 'path' | 'headers' | 'query' | 'sourceIp'>;

/** One expression that took part in a decision. */
export interface ExpressionOutcome {
  name: 'gate' | 'condition';
  /** The expression's text (callers that may not read policies must not be shown it). */
  text?: string;
  result: boolean;
  error?: string;
}

/**
 * A decision and the reasons that decided it (logs, `POST /authz/explain`, policy
 * tests). `code` is the stable reason code: `allow`, `public`, `no-route`,
 * `no-credential`, `gate-denied`, `condition-false`, or the role decision's code
 * (`site-negated`, `not-member`, `no-permission`, `scope-denied`, …).
 */
export interface Decision {
  allowed: boolean;
  code: string;
  /** The matched route rule, when one matched. */
  match?: RouteMatch;
  /** The matched rule's route key. */
  route?: string;
  public?: boolean;
  object?: AuthzObject;
  level?: RoleDecision['level'];
  role?: string;
  permission?: RoleDecision['permission'];
  expressions: ExpressionOutcome[];
  reasons: Reason[];
  policyVersion: string;
}

/**
 * The one decision (DESIGN §4), pure in its arguments: the route the request matches,
 * then for a non-public route the gate, then the role decision, then the route's
 * condition. A request is allowed iff a route matches, the gate holds, the role decision
 * allows (or the route is public) and the condition holds; only an expression result
 * `=== true` counts, and any error denies. Live requests, explain, the IAM answer
 * compiler and policy tests all decide through here.
 */
export function decide(policy: CompiledPolicy, principal: Principal | undefined, request: DecisionRequest, nowMs: number): Decision {
  return decideRoute(policy, principal, request, policy.table.match(request.method, request.path), nowMs);
}

/**
 * {@link decide} for a route already matched (or bound by the IAM answer compiler,
 * which decides a rule for each binding of its org and owner parameters).
 */
export function decideRoute(
  policy: CompiledPolicy,
  principal: Principal | undefined,
  request: DecisionRequest,
  match: RouteMatch | undefined,
  nowMs: number,
): Decision {
  const decision: Decision = { allowed: false, code: 'no-route', expressions: [], reasons: [], policyVersion: policy.version };
  // Orgs being deleted grant nothing, whoever asks (live requests, explain, answers, tests).
  if (principal) principal = withoutDeletingOrgs(principal, policy.deletingOrgIds);
  if (!match) {
    decision.reasons.push({ step: 'route', detail: `no route matches ${request.method} ${request.path}` });
    return decision;
  }
  const rule = match.rule;
  decision.match = match;
  decision.route = rule.route;
  const object: AuthzObject = { type: rule.resource, action: rule.action };
  const orgId = resolveBinding(rule.org, match.pathParameters);
  const ownerId = resolveBinding(rule.owner, match.pathParameters);
  if (orgId !== undefined) object.orgId = orgId;
  if (ownerId !== undefined) object.ownerId = ownerId;
  decision.object = object;
  // Built only when an expression needs it: most routes have none.
  let ctx: ReturnType<typeof expressionContext> | undefined;
  const context = () => (ctx ??= expressionContext(principal, request, object, match.pathParameters, nowMs));

  if (rule.public === true) {
    decision.public = true;
    decision.reasons.push({ step: 'route', detail: `${rule.route} is public` });
  } else {
    if (!principal) {
      decision.code = 'no-credential';
      return decision;
    }
    if (policy.gate) {
      const gate = run('gate', policy.gate, context());
      decision.expressions.push(gate);
      if (!gate.result) {
        decision.code = 'gate-denied';
        return decision;
      }
    }
    const roles = decideRoles(principal, object, policy.catalog);
    decision.reasons.push(...roles.reasons);
    decision.level = roles.level;
    if (roles.role) decision.role = roles.role;
    if (roles.permission) decision.permission = roles.permission;
    if (!roles.allowed) {
      decision.code = roles.code;
      return decision;
    }
  }
  const condition = policy.conditions.get(rule);
  if (condition) {
    const outcome = run('condition', condition, context());
    decision.expressions.push(outcome);
    if (!outcome.result) {
      decision.code = 'condition-false';
      return decision;
    }
  }
  decision.allowed = true;
  decision.code = rule.public ? 'public' : 'allow';
  return decision;
}

function run(name: ExpressionOutcome['name'], slot: ExpressionSlot, ctx: Parameters<typeof evaluateExpression>[1]): ExpressionOutcome {
  if (!slot.ok) return { name, result: false, error: `invalid expression: ${slot.error}` };
  const r = evaluateExpression(slot.compiled, ctx);
  const out: ExpressionOutcome = { name, text: slot.compiled.text, result: r.value };
  if (r.error) out.error = r.error;
  return out;
}

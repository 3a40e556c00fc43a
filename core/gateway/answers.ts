import type { Decided } from '../authorizer/authorize';
import type { AuthzRequest } from '../authorizer/context';
import type { LruCache } from '../cache/lru';
import { sha256Base64url } from '../identity/digest';
import type { Logger } from '../log';
import type { Principal } from '../rbac/types';
import type { MethodArn } from './arn';
import { computeEntitlements, entitledResources } from './entitlements';
import { flattenContext, iamPolicy, MAX_POLICY_BYTES, statement, type IamAuthorizerResponse, type IamStatement } from './iam';

/** The resources a principal may use on one API and stage, or `cut` when they do not fit an answer. */
type Entitled = { cut: false; resources: readonly string[]; bytes: number } | { cut: true };

/** Bytes of an answer besides its resource list (principal, statements, context), generously. */
const POLICY_OVERHEAD_BYTES = 512;
/** Characters IAM treats as wildcards: a resource holding one would widen a statement. */
const IAM_WILDCARD = /[*?]/;
/** Not an HTTP method: no method ARN of an API has it. */
const NO_METHOD = 'NONE';

/**
 * IAM answers that stay exact under API Gateway's cache (DESIGN §5): API Gateway
 * applies a cached answer to every route of the API and stage, so an answer lists every
 * route the principal may use there. The list depends only on the policy, the API and
 * stage, and what decisions under that policy read of the principal, so it is computed
 * once per such key and shared by every principal equal in it (the cache is passed in,
 * bounded in bytes; a list too large for an answer is remembered only as "cut").
 */
export class IamAnswers {
  constructor(private readonly deps: { cache: LruCache<string, object>; logger: Logger; now: () => number; ttlMs: number }) {}

  /** The IAM answer to a decided request for `currentArn` (the method ARN API Gateway asked about). */
  answer(result: Decided, request: AuthzRequest, arn: MethodArn, currentArn: string): IamAuthorizerResponse {
    const context = flattenContext(result.context);
    const principalId = String(result.context.principalId);
    // Nothing from the request widens a statement: an ARN holding `*` or `?` is never named
    // (such a request is allowed only where an entitled statement already covers it).
    const nameable = !IAM_WILDCARD.test(currentArn);
    const entitled: Entitled = result.principal ? this.entitled(result, request, arn) : { cut: true };
    const others = entitled.cut ? [] : entitled.resources.filter((r) => r !== currentArn);
    const fits = !entitled.cut && entitled.bytes + currentArn.length + 3 + POLICY_OVERHEAD_BYTES + contextBytes(context) <= MAX_POLICY_BYTES;
    if (result.effect === 'allow' && result.principal && !fits) this.deps.logger.warn('authorizer.policy-too-large', { principalId });
    const statements: IamStatement[] = [];
    // A Deny names the current ARN only, and the same answer allows everything else the
    // principal may use: a cached Deny never blocks other routes (an explicit Deny wins).
    if (result.effect === 'deny' && nameable) statements.push(statement('Deny', [currentArn]));
    const allowed = result.effect === 'allow' && nameable ? [currentArn] : [];
    if (fits) allowed.push(...others);
    if (allowed.length > 0) statements.push(statement('Allow', allowed));
    // IAM wants a statement: one that matches no method ARN allows nothing and names nothing.
    if (statements.length === 0) statements.push(statement('Deny', [`${arn.prefix}/${NO_METHOD}/`]));
    return iamPolicy(principalId, statements, context);
  }

  /** What the principal may use on this API and stage, computed once per key. */
  private entitled(result: Decided, request: AuthzRequest, arn: MethodArn): Entitled {
    // An expression reading the credential itself makes the list the credential's own.
    const identity = result.policy.principalReads.credential ? identitySource(request) : undefined;
    const key = answerKey(result, arn, identity);
    const hit = this.deps.cache.get(key) as Entitled | undefined;
    if (hit) return hit;
    const { entitlements, perRequest } = computeEntitlements(result.policy, result.principal, this.deps.now(), identity);
    const { resources, omitted } = perRequest ? { resources: [], omitted: [] } : entitledResources(result.policy, entitlements, arn);
    if (omitted.length > 0) this.deps.logger.info('authorizer.entitlements-omitted', { principalId: result.context.principalId, routes: omitted.slice(0, 20), count: omitted.length });
    const bytes = resources.reduce((n, r) => n + r.length + 3, 0);
    // A list that cannot fit an answer is never kept: only the fact that it was cut.
    const entitled: Entitled = bytes + POLICY_OVERHEAD_BYTES > MAX_POLICY_BYTES ? { cut: true } : { cut: false, resources: Object.freeze(resources), bytes };
    this.deps.cache.set(key, entitled, Math.min(this.deps.ttlMs, result.validUntilMs - this.deps.now()), 256 + key.length + (entitled.cut ? 0 : 2 * bytes));
    return entitled;
  }
}

/**
 * The key an allow-list is shared under: policy set and version, API and stage, and
 * what decisions under the policy read of the principal — kind, roles, memberships and
 * token, and its id, email, groups or claims only when the policy reads them.
 */
/** The request's identity source, as expressions read it. */
function identitySource(request: AuthzRequest): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  if (request.headers.authorization !== undefined) out.authorization = request.headers.authorization;
  return out;
}

function answerKey(result: Decided, arn: MethodArn, identity: Record<string, string> | undefined): string {
  const p = result.principal as Principal;
  const reads = result.policy.principalReads;
  let key = `${result.policy.set}\u0000${result.policy.version}\u0000${arn.prefix}\u0000${p.kind}\u0000${JSON.stringify(p.siteRoles)}\u0000${JSON.stringify(p.orgs)}`;
  if (p.token) key += `\u0000${JSON.stringify(p.token)}`;
  if (reads.id) key += `\u0000id:${p.id}`;
  if (reads.email) key += `\u0000email:${p.email ?? ''}:${p.emailVerified === true}`;
  if (reads.groups) key += `\u0000groups:${JSON.stringify(p.groups ?? null)}`;
  // Claims differ per token (iat, jti): they join the key (as a digest) only when read.
  if (reads.claims) key += `\u0000claims:${sha256Base64url(JSON.stringify(p.claims ?? null))}`;
  if (identity !== undefined) key += `\u0000credential:${sha256Base64url(identity.authorization ?? '')}`;
  return key;
}

function contextBytes(ctx: Record<string, unknown>): number {
  let n = 0;
  for (const [k, v] of Object.entries(ctx)) n += k.length + String(v).length + 8;
  return n;
}

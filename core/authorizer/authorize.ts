import { isGatehouseError, KeySourceError, StoreError, Unauthenticated } from '../errors';
import type { Logger } from '../log';
import { evaluateExpression } from '../policy/expression';
import { resolveBinding, type RouteMatch } from '../policy/routes';
import { decide } from '../rbac/decide';
import { withoutDeletingOrgs } from '../rbac/deleting-orgs';
import type { AuthzObject, Decision, Principal, Reason } from '../rbac/types';
import type { AuthorizerStore, TokenRecord } from '../store/types';
import { FailedAttemptLog } from '../tokens/access-log';
import { expressionContext, gatewayContext, type AuthzRequest, type GatewayContext } from './context';
import { PolicyCache, type CompiledPolicy, type ExpressionSlot } from './policy';
import { PrincipalResolver, TokenRejected, type JwtVerifierLike } from './principals';

/** Why the decision came out as it did (logs and `POST /authz/explain`). */
export interface Explanation {
  code: string;
  route?: string;
  public?: boolean;
  object?: AuthzObject;
  level?: Decision['level'];
  role?: string;
  permission?: Decision['permission'];
  expressions: { name: 'gate' | 'condition'; text?: string; result: boolean; error?: string }[];
  reasons: Reason[];
  policyVersion?: string;
}

export type AuthzResult =
  | { effect: 'unauthorized'; code: string }
  | { effect: 'error'; code: string }
  | {
      effect: 'allow' | 'deny';
      code: string;
      principal?: Principal;
      token?: TokenRecord;
      match?: RouteMatch;
      policy: CompiledPolicy;
      explanation: Explanation;
      context: GatewayContext;
      /** Until when this same answer holds for the same credential and route (ms). */
      validUntilMs: number;
    };

/**
 * A request's first phase: the policy it is decided under, its route, and the principal
 * (with the token record for gatehouse tokens), verified or, inside an `EarlyPrepared`,
 * awaiting its confirmation. What the decision is a pure function of, together with the
 * request.
 */
export interface Prepared {
  policy: CompiledPolicy;
  /** Looked up here only without a credential (to know whether the route is public); otherwise when deciding. */
  match?: RouteMatch;
  principal?: Principal;
  token?: TokenRecord;
  /** Until when the policy and the credential's resolution hold (ms). */
  validUntilMs: number;
}

/**
 * A prepared request whose JWT may still be under signature verification: its principal
 * comes from claims not yet known to be signed. Work on it must be thrown away unless
 * `confirmed` settles with undefined; otherwise `confirmed` is the 401 (or fail-closed
 * result) that replaces any decision. See `Authorizer.prepare`.
 */
export interface EarlyPrepared {
  prepared: Prepared;
  confirmed: Promise<Undecided | undefined>;
}

/** A request that ended before a decision: 401 or fail-closed. */
export type Undecided = Extract<AuthzResult, { effect: 'unauthorized' | 'error' }>;

/** A result that carries a decision (allow or deny). */
export type Decided = Extract<AuthzResult, { explanation: unknown }>;

export interface AuthorizerOptions {
  store: AuthorizerStore;
  jwt: JwtVerifierLike;
  logger: Logger;
  /** Milliseconds since the epoch; injected so tests can freeze time. */
  now?: () => number;
  /** Longest time cached principals, tokens and policies may be served. */
  cacheTtlSeconds?: number;
  cacheMaxEntries?: number;
  /** Record token uses and failures in the token's access log. Default true. */
  accessLog?: boolean;
}

/**
 * The authorizer core: credential -> principal -> route -> gate -> role decision ->
 * condition. Pure of API Gateway shapes (the handlers adapt events and answers).
 * Every failure is either 401 (`unauthorized`), a Deny, or `error` (fail closed):
 * nothing but a complete, positive decision produces `allow`.
 */
export class Authorizer {
  readonly policies: PolicyCache;
  readonly principals: PrincipalResolver;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly store: AuthorizerStore;
  private readonly accessLog: boolean;
  /** Memo of recent success-log and lastUsedAt writes, so warm requests write nothing. */
  private readonly recentWrites = new Map<string, number>();
  /** Failed attempts, aggregated per (token, reason, source IP, minute): bounded writes under a flood. */
  private readonly failures: FailedAttemptLog;

  constructor(options: AuthorizerOptions) {
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    this.store = options.store;
    this.accessLog = options.accessLog ?? true;
    const ttl = options.cacheTtlSeconds ?? 30;
    this.failures = new FailedAttemptLog({
      write: (aggregate) => options.store.recordTokenFailures(aggregate),
      now: this.now,
      onError: (err, aggregate) => this.logger.warn('token.access-log-failed', { tokenId: aggregate.tokenId, reason: (err as { code?: string }).code ?? 'unknown' }),
    });
    this.policies = new PolicyCache({ store: options.store, now: this.now, ttlSeconds: ttl, logger: options.logger });
    this.principals = new PrincipalResolver({
      store: options.store,
      jwt: options.jwt,
      now: this.now,
      cacheTtlSeconds: ttl,
      maxEntries: options.cacheMaxEntries ?? 10_000,
    });
  }

  /** Decides one request. Never throws. */
  async authorize(request: AuthzRequest): Promise<AuthzResult> {
    const early = await this.prepare(request);
    if (isUndecided(early)) return early;
    // A known user's new JWT is decided while its signature is checked: the decision
    // counts only once the token is known good, else the refusal replaces it.
    const result = await this.finish(request, early.prepared);
    return (await early.confirmed) ?? result;
  }

  /**
   * First phase: the policy, and the credential resolved to a principal (a 401 or failure
   * ends here). A known user's new JWT is prepared while its signature is still being
   * checked (on WebCrypto's thread), so the decision can be worked out meanwhile: the
   * caller must await `confirmed` before anything comes of that work. Never throws.
   */
  async prepare(request: AuthzRequest): Promise<EarlyPrepared | Undecided> {
    // One async frame on this path: it is walked for every new credential.
    try {
      // Failed attempts counted earlier in this container are written once their slot is over.
      if (this.accessLog && this.failures.due()) await this.failures.flush();
      if (request.malformedCredential) return { effect: 'unauthorized', code: 'credential-malformed' };
      const policy = this.policies.fresh() ?? (await this.policies.load());
      const prepared: Prepared = { policy, validUntilMs: this.policies.freshUntilMs() };
      if (request.credential !== undefined) {
        // The route is looked up when deciding: a shared answer may make that unnecessary.
        const { value: resolved, confirmed } = await this.principals.resolveEarly(request.credential);
        // Memberships in orgs being deleted, and their org tokens, grant nothing (DESIGN §4).
        prepared.principal = withoutDeletingOrgs(resolved.principal, policy.deletingOrgIds);
        if (resolved.token) prepared.token = resolved.token;
        prepared.validUntilMs = Math.min(prepared.validUntilMs, resolved.validUntilMs ?? 0);
        return { prepared, confirmed: confirmed ? confirmed.then((failure) => failure && this.failure(failure)) : CONFIRMED };
      }
      const match = policy.table.match(request.method, request.path);
      // No credential: only a public route may proceed (anonymously).
      if (!match?.rule.public) return { effect: 'unauthorized', code: 'no-credential' };
      prepared.match = match;
      return { prepared, confirmed: CONFIRMED };
    } catch (err) {
      if (err instanceof TokenRejected) await this.recordFailure(err.token, err.code, request);
      return this.failure(err);
    }
  }

  /** Second phase: the decision for a prepared request (and a gatehouse token's access log). Never throws. */
  async finish(request: AuthzRequest, prepared: Prepared): Promise<AuthzResult> {
    try {
      return await this.decidePrepared(request, prepared);
    } catch (err) {
      return this.failure(err);
    }
  }

  private failure(err: unknown): Undecided {
    if (err instanceof Unauthenticated) return { effect: 'unauthorized', code: err.code };
    if (err instanceof StoreError || err instanceof KeySourceError) {
      this.logger.error('authorizer.fail-closed', { reason: err.code, error: err.message });
      return { effect: 'error', code: err.code };
    }
    const code = isGatehouseError(err) ? err.code : 'internal-error';
    this.logger.error('authorizer.fail-closed', { reason: code, error: (err as Error)?.name ?? 'unknown' });
    return { effect: 'error', code };
  }

  private async decidePrepared(request: AuthzRequest, prepared: Prepared): Promise<AuthzResult> {
    const { policy, principal, token } = prepared;
    // Without a principal (a public route, anonymously) the route was matched when preparing.
    const match = principal ? policy.table.match(request.method, request.path) : prepared.match;
    const evaluation = this.evaluate(policy, principal, request, match);
    // Without a credential, anything but an allow is a 401: a credential might change the answer.
    if (!principal && !evaluation.allowed) return { effect: 'unauthorized', code: 'no-credential' };
    // Fields assigned one by one: object spreads of optional parts are slow paths in V8.
    const result: Decided = {
      effect: evaluation.allowed ? 'allow' : 'deny',
      code: evaluation.explanation.code,
      policy,
      explanation: evaluation.explanation,
      context: gatewayContext(principal, token?.id),
      validUntilMs: prepared.validUntilMs,
    };
    if (principal) result.principal = principal;
    if (token) result.token = token;
    if (match) result.match = match;
    if (token) await this.recordUse(token, request, match, result.effect, result.code);
    return result;
  }

  /**
   * The decision for one (principal, request, route). Pure given the compiled policy.
   * Also used for entitlement expansion and `explain`.
   */
  evaluate(
    policy: CompiledPolicy,
    principal: Principal | undefined,
    request: AuthzRequest,
    match: RouteMatch | undefined,
  ): { allowed: boolean; explanation: Explanation } {
    const explanation: Explanation = { code: 'no-route', expressions: [], reasons: [], policyVersion: policy.version };
    // Callers that resolved the principal themselves (explain) get the same view as `prepare`.
    if (principal) principal = withoutDeletingOrgs(principal, policy.deletingOrgIds);
    if (!match) {
      explanation.reasons.push({ step: 'route', detail: `no route matches ${request.method} ${request.path}` });
      return { allowed: false, explanation };
    }
    const rule = match.rule;
    explanation.route = rule.route;
    const object: AuthzObject = {
      type: rule.resource,
      action: rule.action,
      ...optional('orgId', resolveBinding(rule.org, match.pathParameters)),
      ...optional('ownerId', resolveBinding(rule.owner, match.pathParameters)),
    };
    explanation.object = object;
    // Built only when an expression needs it: most routes have none.
    let ctx: ReturnType<typeof expressionContext> | undefined;
    const exprContext = () => (ctx ??= expressionContext(principal, request, object, match.pathParameters, this.now()));

    if (rule.public === true) {
      explanation.public = true;
      explanation.reasons.push({ step: 'route', detail: `${rule.route} is public` });
    } else {
      if (!principal) {
        explanation.code = 'no-credential';
        return { allowed: false, explanation };
      }
      if (policy.gate) {
        const gate = runSlot(policy.gate, exprContext());
        explanation.expressions.push({ name: 'gate', ...gate });
        if (!gate.result) {
          explanation.code = 'gate-denied';
          return { allowed: false, explanation };
        }
      }
      const decision = decide(principal, object, policy.catalog);
      explanation.reasons.push(...decision.reasons);
      explanation.level = decision.level;
      if (decision.role) explanation.role = decision.role;
      if (decision.permission) explanation.permission = decision.permission;
      if (!decision.allowed) {
        explanation.code = decision.code;
        return { allowed: false, explanation };
      }
    }
    const condition = policy.conditions.get(rule);
    if (condition) {
      const c = runSlot(condition, exprContext());
      explanation.expressions.push({ name: 'condition', ...c });
      if (!c.result) {
        explanation.code = 'condition-false';
        return { allowed: false, explanation };
      }
    }
    explanation.code = rule.public ? 'public' : 'allow';
    return { allowed: true, explanation };
  }

  private async recordFailure(token: TokenRecord, code: string, req: AuthzRequest): Promise<void> {
    if (!this.accessLog) return;
    try {
      await this.failures.record(token.id, {
        at: Math.floor(this.now() / 1000),
        route: `${req.method} ${req.path}`.slice(0, 512),
        ...(req.sourceIp ? { sourceIp: req.sourceIp } : {}),
        reason: code,
      });
    } catch (err) {
      this.logger.warn('token.access-log-failed', { tokenId: token.id, reason: (err as { code?: string }).code ?? 'unknown' });
    }
  }

  /**
   * Records a token use: denials always, successes at most once per token per route
   * per minute (memoised here, deduplicated by a conditional write across containers);
   * `lastUsedAt` at most once per hour.
   */
  private async recordUse(token: TokenRecord, request: AuthzRequest, match: RouteMatch | undefined, effect: 'allow' | 'deny', code: string): Promise<void> {
    if (!this.accessLog) return;
    const nowS = Math.floor(this.now() / 1000);
    const routeKey = match ? match.rule.route : `${request.method} ${request.path}`.slice(0, 512);
    const writes: Promise<void>[] = [];
    const entry = { at: nowS, route: routeKey, ...(request.sourceIp ? { sourceIp: request.sourceIp } : {}), outcome: effect, reason: code };
    if (effect === 'deny') {
      writes.push(this.store.recordTokenAccess(token.id, entry));
    } else {
      const minute = Math.floor(nowS / 60);
      const memo = `use#${token.id}#${routeKey}`;
      if (this.recentWrites.get(memo) !== minute) {
        this.rememberWrite(memo, minute);
        const dedupe = `use-${minute}-${shortHash(routeKey)}`;
        writes.push(this.store.recordTokenAccess(token.id, entry, dedupe));
      }
      const hour = Math.floor(nowS / 3600);
      const touchMemo = `touch#${token.id}`;
      if (this.recentWrites.get(touchMemo) !== hour && !(token.lastUsedAt !== undefined && token.lastUsedAt > nowS - 3600)) {
        this.rememberWrite(touchMemo, hour);
        writes.push(this.store.touchTokenLastUsed(token.id, nowS, nowS - 3600));
      }
    }
    const results = await Promise.allSettled(writes);
    for (const r of results) {
      if (r.status === 'rejected') this.logger.warn('token.access-log-failed', { tokenId: token.id, reason: (r.reason as { code?: string })?.code ?? 'unknown' });
    }
  }

  private rememberWrite(key: string, window: number): void {
    this.recentWrites.delete(key);
    this.recentWrites.set(key, window);
    if (this.recentWrites.size > 10_000) {
      const oldest = this.recentWrites.keys().next();
      if (!oldest.done) this.recentWrites.delete(oldest.value);
    }
  }
}

/** Nothing left to confirm. */
const CONFIRMED: Promise<undefined> = Promise.resolve(undefined);

/** True for a request that ended before a decision. */
export function isUndecided(value: EarlyPrepared | AuthzResult): value is Undecided {
  return 'effect' in value && (value.effect === 'unauthorized' || value.effect === 'error');
}

function runSlot(slot: ExpressionSlot, ctx: Parameters<typeof evaluateExpression>[1]): { text?: string; result: boolean; error?: string } {
  if (!slot.ok) return { result: false, error: `invalid expression: ${slot.error}` };
  const r = evaluateExpression(slot.compiled, ctx);
  return { text: slot.compiled.text, result: r.value, ...(r.error ? { error: r.error } : {}) };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(36);
}


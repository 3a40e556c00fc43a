import { isGatehouseError, KeySourceError, StoreError, Unauthenticated } from '../errors';
import type { Logger } from '../log';
import { withoutDeletingOrgs } from '../rbac/deleting-orgs';
import type { Principal } from '../rbac/types';
import type { TokenRecord } from '../store/types';
import { TokenActivity } from './activity';
import type { AuthzRequest } from './context';
import type { Decision } from './decide';
import { principalClass, type CompiledPolicy, type PolicySource } from './policy';
import { TokenRejected, type PrincipalResolver } from './principals';
import type { ShadowDecisions } from './shadow';
import type { SharedDecisions } from './shared';

/** A request that ended before a decision: no usable credential (401) or a failure (fail closed). */
export type Undecided = { effect: 'unauthorized'; code: string } | { effect: 'error'; code: string };

/** A decided request: Allow or Deny, with everything its answer is built from. */
export interface Decided {
  effect: 'allow' | 'deny';
  code: string;
  decision: Decision;
  /** Undefined for an anonymous caller on a public route. */
  principal?: Principal;
  /** With `principal`: what decisions under the policy read of it (`principalClass`); decisions and statements are shared under it. */
  principalClass?: string;
  token?: TokenRecord;
  policy: CompiledPolicy;
  /** Until when the same answer holds for the same credential and route (ms): the resolution's and the policy's freshness. */
  validUntilMs: number;
}

export type AuthzResult = Undecided | Decided;

export interface AuthorizerOptions {
  principals: PrincipalResolver;
  policies: PolicySource;
  /** `decide()`, shared by principals equal in what the policy reads of them. */
  decisions: SharedDecisions;
  activity: TokenActivity;
  /** Decides with a set's candidate beside it (shadow mode); it never changes an answer. */
  shadow: ShadowDecisions;
  logger: Logger;
  now: () => number;
}

/**
 * The authorizer, top to bottom: credential -> principal -> policy -> decision.
 * 1. A sent credential that does not parse is a 401.
 * 2. The credential is verified before anything else is read: a JWT's signature and
 *    claims (no read at all when they fail), a gatehouse token's format and checksum
 *    (offline), then its record and hash. Then the principal's roles.
 * 3. The policy set of the calling API.
 * 4. `decide()` (shared by principals the policy cannot tell apart, `shared.ts`);
 *    without a credential anything but an Allow is a 401.
 * 5. A gatehouse token's use goes to its access log.
 * Beside step 4, a set's candidate (shadow mode) decides too; only the live set answers.
 * Never throws: every failure is a 401 (`unauthorized`) or, for a store or key source
 * that cannot answer, `error` (fail closed). Only a complete, positive decision allows.
 */
export class Authorizer {
  constructor(private readonly deps: AuthorizerOptions) {}

  async authorize(request: AuthzRequest): Promise<AuthzResult> {
    try {
      await this.deps.activity.flushDue();
      await this.deps.shadow.flushDue();
      if (request.malformedCredential) return { effect: 'unauthorized', code: 'credential-malformed' };
      const resolved = request.credential === undefined ? undefined : await this.deps.principals.resolve(request.credential, request.credentialDigest);
      const { policy, freshUntilMs } = await this.deps.policies.forApi(request.apiId);
      // Orgs being deleted grant nothing: memberships in them and their org tokens are dropped.
      const principal = resolved && withoutDeletingOrgs(resolved.principal, policy.deletingOrgIds);
      const cls = principal && principalClass(policy, principal);
      const decision = this.deps.decisions.decide(policy, principal, cls, request, this.deps.now());
      this.deps.shadow.compare(policy, principal, request, decision, this.deps.now());
      // Without a credential, anything but an allow is a 401: a credential might change the answer.
      if (!resolved && !decision.allowed) return { effect: 'unauthorized', code: 'no-credential' };
      const effect = decision.allowed ? 'allow' : 'deny';
      if (resolved?.token) await this.deps.activity.use(resolved.token, request, decision.route, effect, decision.code);
      const result: Decided = {
        effect,
        code: decision.code,
        decision,
        policy,
        validUntilMs: Math.min(resolved?.validUntilMs ?? Infinity, freshUntilMs),
      };
      if (principal) {
        result.principal = principal;
        result.principalClass = cls;
      }
      if (resolved?.token) result.token = resolved.token;
      return result;
    } catch (err) {
      if (err instanceof TokenRejected) await this.deps.activity.failure(err.token, err.code, request);
      return this.failure(err);
    }
  }

  /**
   * A request answered again with an earlier decision for the same credential and
   * method ARN, still within `result.validUntilMs` (the gateway's `RepeatedAnswers`):
   * what every request does besides deciding happens as for a new one (due flushes, the
   * token's access log). Never throws; a failure here fails closed like `authorize`.
   */
  async repeated(result: Decided, request: AuthzRequest): Promise<AuthzResult> {
    try {
      await this.deps.activity.flushDue();
      await this.deps.shadow.flushDue();
      if (result.token) await this.deps.activity.use(result.token, request, result.decision.route, result.effect, result.code);
      return result;
    } catch (err) {
      return this.failure(err);
    }
  }

  private failure(err: unknown): Undecided {
    if (err instanceof Unauthenticated) return { effect: 'unauthorized', code: err.code };
    if (err instanceof StoreError || err instanceof KeySourceError) {
      this.deps.logger.error('authorizer.fail-closed', { reason: err.code, error: err.message });
      return { effect: 'error', code: err.code };
    }
    const code = isGatehouseError(err) ? err.code : 'internal-error';
    this.deps.logger.error('authorizer.fail-closed', { reason: code, error: (err as Error)?.name ?? 'unknown' });
    return { effect: 'error', code };
  }
}

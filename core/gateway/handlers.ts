import type { AuthzRequest } from '../authorizer/context';
import { isUndecided, type Authorizer, type AuthzResult, type Decided, type Prepared, type Undecided } from '../authorizer/authorize';
import type { CompiledPolicy } from '../authorizer/policy';
import { computeEntitlements, entitledResources } from '../authorizer/entitlements';
import { LruCache } from '../cache/lru';
import { sha256Base64url } from '../identity/digest';
import type { Logger } from '../log';
import type { Principal } from '../rbac/types';
import { parseMethodArn, type MethodArn } from './arn';
import { fromHttpV2, fromRestRequest, fromRestToken, fromWebSocketConnect, type HttpRequestEventV2, type RestRequestEvent, type RestTokenEvent } from './events';
import { buildIamPolicy, flattenContext, MAX_POLICY_BYTES, type IamAuthorizerResponse } from './iam';

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

/** What a decision log line says about the outcome (never the credential). */
interface DecisionSummary {
  effect: AuthzResult['effect'];
  code: string;
  principalId?: string | number | boolean;
  tokenId?: string;
  route?: string;
  policyVersion?: string;
}

function summarize(result: AuthzResult): DecisionSummary {
  const summary: DecisionSummary = { effect: result.effect, code: result.code };
  if (result.effect === 'allow' || result.effect === 'deny') {
    summary.principalId = result.context.principalId;
    if (result.token) summary.tokenId = result.token.id;
    if (result.match) summary.route = result.match.rule.route;
    summary.policyVersion = result.policy.version;
  }
  return summary;
}

/** An answer shared by the credentials of one principal, with the summary its log lines repeat. */
interface SharedAnswer {
  policy: CompiledPolicy;
  answer: object;
  summary: DecisionSummary;
}

/**
 * Shared decision step of every flavour: decide, log (reason code, never the
 * credential), and for an Allow compute the cache-correct resource list.
 */
class Decider {
  /** Answers for repeated identical requests, never past the principal's and policy's own freshness. */
  private readonly memo: LruCache<string, object>;
  /** Answers by (answer shape, route ARN, principal), for a known user's new credentials. */
  private readonly shared: LruCache<string, SharedAnswer>;
  private readonly lists: LruCache<string, { resources: string[]; bytes: number; omitted: number }>;
  private readonly keys = new WeakMap<Principal, string>();
  private readonly roleKeys = new WeakMap<object, string>();
  private readonly now: () => number;
  private readonly ttlMs: number;

  constructor(private readonly deps: GatewayDeps) {
    this.now = deps.now ?? Date.now;
    this.ttlMs = (deps.cacheTtlSeconds ?? 30) * 1000;
    this.lists = new LruCache({ maxEntries: 5000, now: this.now });
    this.memo = new LruCache({ maxEntries: 5000, now: this.now });
    this.shared = new LruCache({ maxEntries: 5000, now: this.now });
  }

  /** A remembered answer for `key`, or undefined. */
  recall<T>(key: string | undefined, flavour: string): T | undefined {
    if (key === undefined) return undefined;
    const hit = this.memo.get(key) as T | undefined;
    if (hit !== undefined && (!this.deps.logger.enabled || this.deps.logger.enabled('debug'))) {
      this.deps.logger.debug('authorizer.decision', { flavour, cached: true });
    }
    return hit;
  }

  /**
   * Remembers an answer when it is a pure function of the key: a decided (allow/deny)
   * answer for a JWT or anonymous-free principal, under a policy whose expressions read
   * neither time nor request data outside the key. Gatehouse tokens are not remembered,
   * so every use still reaches their access log.
   */
  remember(key: string | undefined, result: AuthzResult, answer: object): void {
    if (key === undefined || (result.effect !== 'allow' && result.effect !== 'deny')) return;
    if (result.token || !result.principal || !result.policy.requestIndependent) return;
    const ttl = result.validUntilMs - this.now();
    if (ttl > 0) this.memo.set(key, answer, ttl);
  }

  /** Decides `request` (WebSocket: no answer is shared or remembered). */
  async run(flavour: string, request: AuthzRequest, arn: MethodArn | undefined): Promise<AuthzResult> {
    const result = await this.deps.authorizer.authorize(request);
    this.log(flavour, request, arn, summarize(result));
    return result;
  }

  /**
   * Decides `request` and builds its answer with `build`, or returns why there is none.
   * `shape` names the answer's form (for sharing). A decided answer is remembered under
   * `memoKey` (route and credential digest) and, when the policy makes it a pure
   * function of (route ARN, principal), shared by every credential of the principal:
   * a known user's new token is then verified and resolved, but not decided again.
   */
  async answer<A extends object>(
    flavour: string,
    shape: string,
    request: AuthzRequest,
    arn: MethodArn,
    currentArn: string,
    memoKey: string | undefined,
    build: (result: Decided) => A,
  ): Promise<{ answer: A } | { undecided: Undecided }> {
    const early = await this.deps.authorizer.prepare(request);
    if (isUndecided(early)) return this.undecided(flavour, request, arn, early);
    // A known user's new JWT arrives here while WebCrypto still checks its signature: the
    // answer is looked up or decided meanwhile, and nothing of it is logged, cached or
    // returned before `confirmed` says the token is valid.
    const { prepared, confirmed } = early;
    const shareKey = this.shareKey(shape, prepared, currentArn);
    if (shareKey !== undefined) {
      const hit = this.shared.get(shareKey);
      // The same compiled policy object, not only the same version string.
      if (hit && hit.policy === prepared.policy) {
        const refused = await confirmed;
        if (refused) return this.undecided(flavour, request, arn, refused);
        // Not remembered under this credential as well: the shared entry already answers it
        // again after a resolver lookup, and one-shot tokens (the usual case for a known
        // user's new token) would only fill the memo.
        this.log(flavour, request, arn, hit.summary, true);
        return { answer: hit.answer as A };
      }
    }
    const result = await this.deps.authorizer.finish(request, prepared);
    const refused = await confirmed;
    if (refused) return this.undecided(flavour, request, arn, refused);
    const summary = summarize(result);
    this.log(flavour, request, arn, summary);
    if (isUndecided(result)) return { undecided: result };
    const answer = build(result);
    this.remember(memoKey, result, answer);
    if (shareKey !== undefined) this.shared.set(shareKey, { policy: result.policy, answer, summary }, this.ttlMs);
    return { answer };
  }

  /** The end of a request refused before a decision (or, its signature failing, after one was worked out): logged like any 401. */
  private undecided(flavour: string, request: AuthzRequest, arn: MethodArn, refused: Undecided): { undecided: Undecided } {
    this.log(flavour, request, arn, summarize(refused));
    return { undecided: refused };
  }

  /**
   * The key under which a decided answer may serve every credential of its principal,
   * or undefined. Only for JWT users (a gatehouse token's every use reaches its access
   * log) under a policy whose expressions read neither time, nor request data outside
   * the cache key, nor the credential itself: the decision then depends on the route
   * ARN and the principal's attributes alone, all of which `principalKey` holds (claims
   * included when an expression reads them).
   */
  private shareKey(shape: string, prepared: Prepared, currentArn: string): string | undefined {
    const { principal, policy } = prepared;
    if (!principal || prepared.token || principal.token || !policy.requestIndependent || policy.readsCredential) return undefined;
    return `${shape}\u0000${currentArn}\u0000${this.principalKey(principal, policy.readsClaims)}`;
  }

  /** One `authorizer.decision` line: error level for failures, `shared: true` for a shared answer. */
  private log(flavour: string, request: AuthzRequest, arn: MethodArn | undefined, summary: DecisionSummary, shared = false): void {
    const level = summary.effect === 'error' ? 'error' : 'info';
    if (this.deps.logger.enabled && !this.deps.logger.enabled(level)) return;
    const fields: Record<string, unknown> = { flavour, effect: summary.effect, reason: summary.code, method: request.method, path: request.path.slice(0, 256) };
    if (summary.principalId !== undefined) fields.principalId = summary.principalId;
    if (summary.tokenId !== undefined) fields.tokenId = summary.tokenId;
    if (summary.route !== undefined) fields.route = summary.route;
    if (summary.policyVersion !== undefined) fields.policyVersion = summary.policyVersion;
    if (arn) fields.apiId = arn.apiId;
    if (shared) fields.shared = true;
    this.deps.logger[level]('authorizer.decision', fields);
  }

  /**
   * What the allow-list depends on: the principal's identity, roles, scopes and the
   * attributes expressions may read. Principals are cached objects on the warm path,
   * so the key is computed once per principal object.
   */
  private principalKey(p: Principal | undefined, withClaims: boolean): string {
    if (!p) return 'anonymous';
    let k = this.keys.get(p);
    if (k === undefined) {
      // Roles come from the cached user record shared by all of a user's credentials:
      // serialise them once per record, not once per credential.
      let roles = this.roleKeys.get(p.orgs);
      if (roles === undefined) {
        roles = JSON.stringify([p.siteRoles, p.orgs]);
        this.roleKeys.set(p.orgs, roles);
      }
      k = `${p.id}\u0000${p.kind}\u0000${roles}\u0000${p.email ?? ''}\u0000${p.emailVerified === true}\u0000${p.groups ? JSON.stringify(p.groups) : ''}\u0000${p.token ? JSON.stringify(p.token) : ''}`;
      this.keys.set(p, k);
    }
    // Claims differ per token (iat, jti): they join the key only when an expression reads them.
    return withClaims ? `${k}|${sha256Base64url(JSON.stringify(p.claims ?? null))}` : k;
  }

  /** Every ARN the principal may use on this API and stage (cached per principal and policy version). */
  allowList(result: Decided, request: AuthzRequest, arn: MethodArn, currentArn: string): { resources: string[]; truncated: boolean } {
    let key = `${result.policy.version}|${arn.prefix}|${this.principalKey(result.principal, result.policy.readsClaims)}`;
    if (result.policy.readsCredential && request.credential) key += `|${sha256Base64url(request.credential)}`;
    let cached = this.lists.get(key);
    if (!cached) {
      const { entitlements, perRequest } = computeEntitlements(result.policy, result.principal, request, this.now());
      const { resources, omitted } = perRequest ? { resources: [], omitted: [] } : entitledResources(result.policy, entitlements, arn);
      // JSON bytes of the list, computed once: the warm path never serialises it again.
      const bytes = resources.reduce((n, r) => n + JSON.stringify(r).length + 1, 0);
      cached = { resources, bytes, omitted: omitted.length };
      this.lists.set(key, cached, this.ttlMs);
      if (omitted.length > 0) this.deps.logger.info('authorizer.entitlements-omitted', { principalId: result.context.principalId, routes: omitted.slice(0, 20), count: omitted.length });
    }
    const others = cached.resources.includes(currentArn) ? cached.resources.filter((r) => r !== currentArn) : cached.resources;
    const total = cached.bytes + JSON.stringify(currentArn).length + POLICY_OVERHEAD_BYTES + contextBytes(result.context);
    if (total > MAX_POLICY_BYTES) return { resources: [currentArn], truncated: true };
    return { resources: [currentArn, ...others], truncated: false };
  }

  iam(result: AuthzResult, request: AuthzRequest, arn: MethodArn, currentArn: string): IamAuthorizerResponse {
    if (result.effect !== 'allow' && result.effect !== 'deny') throw new Error('unreachable');
    const context = flattenContext(result.context);
    const principalId = String(result.context.principalId);
    if (result.effect === 'deny') {
      // API Gateway applies a cached answer to every route: the Deny names the current
      // ARN only, and the same answer allows everything else the principal may use, so a
      // cached Deny never blocks other routes (an explicit Deny wins where both match).
      const denied = buildIamPolicy({ principalId, effect: 'Deny', resources: [currentArn], context });
      if (!result.principal) return denied;
      const { resources, truncated } = this.allowList(result, request, arn, currentArn);
      const others = resources.filter((r) => r !== currentArn);
      if (truncated || others.length === 0) return denied;
      denied.policyDocument.Statement.push({ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: others });
      return denied;
    }
    const { resources, truncated } = this.allowList(result, request, arn, currentArn);
    if (truncated) this.deps.logger.warn('authorizer.policy-too-large', { principalId });
    return buildIamPolicy({ principalId, effect: 'Allow', resources, context });
  }
}

/** Bytes of the policy answer besides its resource list (principal, statement, context), generously. */
const POLICY_OVERHEAD_BYTES = 512;

function contextBytes(ctx: Record<string, unknown>): number {
  let n = 0;
  for (const [k, v] of Object.entries(ctx)) n += k.length + String(v).length + 8;
  return n;
}

function fail(result: AuthzResult): never {
  throw new Error(result.effect === 'unauthorized' ? UNAUTHORIZED : AUTHORIZER_FAILURE);
}

/**
 * Parsed ARNs by their text. A container sees few distinct routes, and parsing shows
 * on every new credential; paths are caller-chosen, so the map is bounded (emptied
 * when full). Entries are frozen: every request shares them.
 */
const parsedArns = new Map<string, MethodArn | null>();
const MAX_PARSED_ARNS = 1000;

function parseArnCached(value: string): MethodArn | undefined {
  let arn = parsedArns.get(value);
  if (arn === undefined) {
    arn = parseMethodArn(value) ?? null;
    if (arn) Object.freeze(arn);
    if (parsedArns.size >= MAX_PARSED_ARNS) parsedArns.clear();
    parsedArns.set(value, arn);
  }
  return arn ?? undefined;
}

/**
 * The memo key of a request with a credential: flavour, route ARN and the credential's
 * SHA-256 (the resolver hashes the same string next, and gets it from the digest's
 * one-entry memo), so no raw credential is kept as a key.
 */
function memoKey(flavour: string, routeArn: string, request: AuthzRequest): string | undefined {
  return request.credential === undefined ? undefined : `${flavour}\u0000${routeArn}\u0000${sha256Base64url(request.credential)}`;
}

function arnOrFail(logger: Logger, value: unknown): MethodArn {
  const arn = typeof value === 'string' ? parseArnCached(value) : undefined;
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
    const flavour = event?.type === 'TOKEN' ? 'rest-token' : 'rest-request';
    const arn = arnOrFail(deps.logger, event?.methodArn);
    const request = event.type === 'TOKEN' ? fromRestToken(event, arn) : fromRestRequest(event as RestRequestEvent, arn);
    const key = memoKey(event.type === 'TOKEN' ? 'T' : 'R', event.methodArn as string, request);
    const hit = decider.recall<IamAuthorizerResponse>(key, flavour);
    if (hit) return hit;
    const currentArn = event.methodArn as string;
    const out = await decider.answer(flavour, 'iam', request, arn, currentArn, key, (result) => decider.iam(result, request, arn, currentArn));
    if ('undecided' in out) fail(out.undecided);
    return out.answer;
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
    const arn = typeof event?.routeArn === 'string' ? parseArnCached(event.routeArn) : undefined;
    if (!arn) {
      deps.logger.error('authorizer.decision', { effect: 'error', reason: 'invalid-route-arn', flavour: 'http' });
      if (deps.mode === 'simple') return { isAuthorized: false };
      throw new Error(AUTHORIZER_FAILURE);
    }
    const request = fromHttpV2(event, arn);
    const key = memoKey(`H${deps.mode}`, event.routeArn as string, request);
    const hit = decider.recall<HttpSimpleResponse | IamAuthorizerResponse>(key, 'http');
    if (hit) return hit;
    const currentArn = event.routeArn as string;
    if (deps.mode === 'simple') {
      const out = await decider.answer('http', 'simple', request, arn, currentArn, key, (result): HttpSimpleResponse => ({ isAuthorized: result.effect === 'allow', context: flattenContext(result.context) }));
      return 'undecided' in out ? { isAuthorized: false } : out.answer;
    }
    const out = await decider.answer('http', 'iam', request, arn, currentArn, key, (result) => decider.iam(result, request, arn, currentArn));
    if ('undecided' in out) fail(out.undecided);
    return out.answer;
  };
}

import type { Decided } from '../authorizer/authorize';
import type { AuthzRequest } from '../authorizer/context';
import type { LruCache } from '../cache/lru';
import { sha256Base64url } from '../identity/digest';
import type { Logger } from '../log';
import type { MethodArn } from './arn';
import { ANY, compileStatements, iamPatternsRegExp, type CompiledStatements } from './compile';
import { answerChars, answerContext, freezeAnswer, iamPolicy, principalIdOf, MAX_POLICY_BYTES, statement, type IamAuthorizerResponse, type IamStatement } from './iam';

/** Bytes of an answer besides its resources (principal, statements, context keys), generously. */
const POLICY_OVERHEAD_BYTES = 512;
/** Characters IAM treats as wildcards: a resource holding one would widen a statement. */
const IAM_WILDCARD = /[*?]/;
/** Not an HTTP method: no method ARN of an API has it. */
const NO_METHOD = 'NONE';

/** Why an answer covers the live request only. */
type CutReason = 'too-large' | 'per-request' | 'not-listable';

/**
 * A principal's compiled statements written for one API stage: each pattern under the
 * stage's ARN prefix, as the answer lists it. Shared by every answer that needs nothing
 * added (frozen), and matched against a live ARN's tail in one test per effect.
 */
export interface WrittenStatements {
  compiled: CompiledStatements;
  /** `Allow` and `Deny` statements of the patterns under the prefix (frozen; absent when empty). */
  allow?: IamStatement;
  deny?: IamStatement;
  /** Bytes the written patterns take in an answer. */
  bytes: number;
  /** Matches a tail (after `<prefix>/`) any pattern covers, as IAM matches it; undefined when none. */
  allowMatch?: RegExp;
  denyMatch?: RegExp;
}

/**
 * IAM answers that stay exact under API Gateway's cache (DESIGN §5). API Gateway applies
 * a cached answer to every route of the API and stage, so an answer holds the compiled
 * statements (`compile.ts`) of everything the principal may use there, plus the live
 * request when no statement covers it. The statements depend only on the policy and what
 * decisions under it read of the principal, so they are compiled once per such key and
 * API stage, written under the stage's ARN prefix, and shared by every principal equal in
 * it (the cache is passed in, bounded in bytes).
 * When the statements cannot be used (too large, a gate reading request data), the
 * answer covers the live request only, and says so in the log.
 */
export class IamAnswers {
  constructor(
    private readonly deps: {
      cache: LruCache<string, WrittenStatements | 'cut'>;
      /** Answers shared by a holder's credentials (see `answer`). */
      shared: LruCache<string, IamAuthorizerResponse>;
      logger: Logger;
      now: () => number;
      ttlMs: number;
    },
  ) {}

  /**
   * The IAM answer to a decided request for `currentArn` (the method ARN API Gateway asked
   * about). Under a repeatable policy an answer is built from the statements, the decision
   * and the context alone, each fixed by the statements' key, the method ARN (and the
   * method and path decided on) and the holder (id, token, verified email: the context), so it is shared by the holder's
   * credentials: a user's new JWT gets the answer the last one got. Kept from a key's
   * second request on, and frozen once kept.
   */
  answer(result: Decided, request: AuthzRequest, arn: MethodArn, currentArn: string): IamAuthorizerResponse {
    if (!result.policy.repeatable || !result.principal || result.policy.principalReads.credential) return this.build(result, request, arn, currentArn);
    const p = result.principal;
    const key = `${statementsKey(result, undefined)}\u0000${currentArn}\u0000${request.method}\u0000${request.path}\u0000${p.id}\u0000${result.token?.id ?? ''}\u0000${p.emailVerified === true ? (p.email ?? '') : ''}`;
    const kept = this.deps.shared.get(key);
    if (kept) return kept;
    const answer = this.build(result, request, arn, currentArn);
    const ttl = Math.min(this.deps.ttlMs, result.validUntilMs - this.deps.now());
    if (this.deps.shared.set(key, answer, ttl, () => 512 + 2 * (key.length + answerChars(answer)))) freezeAnswer(answer);
    return answer;
  }

  private build(result: Decided, request: AuthzRequest, arn: MethodArn, currentArn: string): IamAuthorizerResponse {
    const context = answerContext(result);
    const principalId = principalIdOf(result.principal);
    // Nothing from the request widens a statement: an ARN holding `*` or `?` is never named
    // (such a request is allowed only where an entitled statement already covers it).
    const nameable = !IAM_WILDCARD.test(currentArn);
    const budget = MAX_POLICY_BYTES - POLICY_OVERHEAD_BYTES - contextBytes(context) - currentArn.length;
    const written = result.principal ? this.statements(result, request, arn.prefix, budget) : 'cut';
    let cut: CutReason | undefined = written === 'cut' ? 'too-large' : written.compiled.perRequest ? 'per-request' : undefined;
    let statements: IamStatement[] = [];
    if (written !== 'cut' && !written.compiled.perRequest) {
      let { allow, deny } = written;
      let added = 0;
      // The live ARN is the prefix and a tail (`parseMethodArn` rebuilds the prefix from it):
      // the patterns are matched against the tail.
      const tail = currentArn.slice(arn.prefix.length + 1);
      const deniedLive = written.denyMatch?.test(tail) === true;
      if (result.effect === 'allow' && (!covered(written.compiled, result, arn, currentArn) || deniedLive)) {
        // Allowed live, but no statement covers it (a condition reading request data, a
        // route left out, a Deny carving a rare value out of an Allow): name it, unless a
        // Deny covers it (an explicit Deny wins: then the answer is cut to the live request).
        if (nameable && !deniedLive) {
          allow = statement('Allow', [...(allow?.Resource ?? []), currentArn]);
          added++;
        } else cut = 'not-listable';
      }
      // The live request's own effect comes first (a Deny also names the live ARN): the
      // order changes nothing for IAM (an explicit Deny wins) but reads as the decision.
      if (result.effect === 'deny' && nameable) {
        deny = statement('Deny', [currentArn, ...(deny?.Resource ?? [])]);
        added++;
      }
      // Denied live but not nameable: no wildcard may cover it (a path no rule routes is
      // outside the statements' proof, and this one is being asked about now).
      if (result.effect === 'deny' && !nameable && written.allowMatch?.test(tail) === true && !deniedLive) cut = 'not-listable';
      const first = result.effect === 'allow' ? allow : deny;
      const second = result.effect === 'allow' ? deny : allow;
      if (first) statements.push(first);
      if (second) statements.push(second);
      // Each pattern is written with this API's prefix: the answer must still fit.
      if (written.bytes + added * (arn.prefix.length + 4) > budget) cut = 'too-large';
    }
    if (cut !== undefined) {
      statements = this.currentOnly(result, nameable, currentArn, arn);
      const fields = { principalId, reason: cut, route: result.decision.route ?? null };
      if (cut === 'too-large') this.deps.logger.warn('authorizer.policy-too-large', fields);
      else this.deps.logger.info('authorizer.answer-cut', fields);
    }
    // IAM wants a statement: one that matches no method ARN allows nothing and names nothing.
    if (statements.length === 0) statements.push(statement('Deny', [nameable ? currentArn : `${arn.prefix}/${NO_METHOD}/`]));
    return iamPolicy(principalId, statements, context);
  }

  /** The answer for the live request alone. */
  private currentOnly(result: Decided, nameable: boolean, currentArn: string, arn: MethodArn): IamStatement[] {
    if (!nameable) return [statement('Deny', [`${arn.prefix}/${NO_METHOD}/`])];
    return [statement(result.effect === 'allow' ? 'Allow' : 'Deny', [currentArn])];
  }

  /** The principal's statements written under `prefix`, compiled once per key and stage (and never a list too large for an answer). */
  private statements(result: Decided, request: AuthzRequest, prefix: string, budget: number): WrittenStatements | 'cut' {
    // An expression reading the credential itself makes the statements the credential's own.
    const identity = result.policy.principalReads.credential ? identitySource(request) : undefined;
    const key = `${statementsKey(result, identity)}\u0000${prefix}`;
    const hit = this.deps.cache.get(key);
    if (hit !== undefined) return hit;
    const compiled = compileStatements(result.policy, result.principal!, this.deps.now(), { maxBytes: budget, ...(identity ? { identity } : {}) });
    if (compiled !== 'cut' && compiled.omitted.length > 0) {
      this.deps.logger.info('authorizer.entitlements-omitted', { principalId: principalIdOf(result.principal), routes: compiled.omitted.slice(0, 20), count: compiled.omitted.length });
    }
    const written = compiled === 'cut' ? 'cut' : write(compiled, prefix);
    const ttl = Math.min(this.deps.ttlMs, result.validUntilMs - this.deps.now());
    // Bytes: the key, the patterns (as compiled and as written), the coverage map, and the two RegExps.
    const bytes = 256 + key.length + (written === 'cut' ? 0 : 2 * written.compiled.bytes + written.bytes + 64 * written.compiled.covered.size + 512);
    this.deps.cache.set(key, written, ttl, bytes);
    return written;
  }
}

/** A principal's statements written under an API stage's ARN prefix (see {@link WrittenStatements}). */
function write(compiled: CompiledStatements, prefix: string): WrittenStatements {
  const under = (patterns: readonly string[]) => patterns.map((p) => `${prefix}/${p}`);
  // Each pattern gains the prefix and its `/` (and 3 bytes of JSON around it, as `compiled.bytes` counts).
  const out: WrittenStatements = { compiled, bytes: compiled.bytes + (compiled.allow.length + compiled.deny.length) * (prefix.length + 4) };
  if (compiled.allow.length > 0) out.allow = frozen(statement('Allow', under(compiled.allow)));
  if (compiled.deny.length > 0) out.deny = frozen(statement('Deny', under(compiled.deny)));
  const allowMatch = iamPatternsRegExp(compiled.allow);
  const denyMatch = iamPatternsRegExp(compiled.deny);
  if (allowMatch) out.allowMatch = allowMatch;
  if (denyMatch) out.denyMatch = denyMatch;
  return out;
}

/** A statement shared by many answers: nobody may change it. */
function frozen(s: IamStatement): IamStatement {
  Object.freeze(s.Resource);
  return Object.freeze(s);
}

/** True when the statements cover the live request's own route binding. */
function covered(compiled: CompiledStatements, result: Decided, arn: MethodArn, currentArn: string): boolean {
  const match = result.decision.match;
  // A percent escape is decided decoded, while IAM reads it as written: never covered.
  if (!match || currentArn.includes('%')) return false;
  const bindings = compiled.covered.get(match.rule)?.get(arn.method);
  return (bindings ?? []).some((b) => Object.entries(b).every(([param, value]) => value === ANY || match.pathParameters[param] === value));
}

/** The request's identity source, as expressions read it. */
function identitySource(request: AuthzRequest): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  if (request.headers.authorization !== undefined) out.authorization = request.headers.authorization;
  return out;
}

/**
 * The key statements are shared under: policy set and version, what decisions under the
 * policy read of the principal (`principalClass`), and the credential when the policy reads it.
 */
function statementsKey(result: Decided, identity: Record<string, string> | undefined): string {
  let key = `${result.policy.set}\u0000${result.policy.version}\u0000${result.principalClass}`;
  if (identity !== undefined) key += `\u0000credential:${sha256Base64url(identity.authorization ?? '')}`;
  return key;
}

function contextBytes(ctx: Record<string, unknown>): number {
  let n = 0;
  for (const k of Object.keys(ctx)) n += k.length + String(ctx[k]).length + 8;
  return n;
}

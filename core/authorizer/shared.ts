import type { LruCache } from '../cache/lru';
import { decide, type Decision, type DecisionRequest } from './decide';
import type { CompiledPolicy } from './policy';
import type { Principal } from '../rbac/types';

/**
 * `decide()`, shared by principals equal in what the policy reads of them (a known user's
 * new JWT is decided as the user's last one was). A wrapper like the other caches: the
 * decision itself knows nothing of it.
 *
 * It holds because `decide()` is pure in its arguments, and under a repeatable policy
 * (`CompiledPolicy.repeatable`: no expression reads the request beyond its method, path and
 * path parameters, nor the time, and no candidate is shadowed) a decision reads of the
 * request only its method and path, and of the principal only its class
 * (`principalClass`). So the key is the policy set and version, the method, the path and
 * the class; anything else is decided afresh. A decision is kept from its key's second
 * request on (the cache admits on the second `set`), and frozen once kept: every request
 * that shares it reads the same object.
 */
export class SharedDecisions {
  constructor(private readonly deps: { cache: LruCache<string, Decision>; ttlMs: number }) {}

  decide(policy: CompiledPolicy, principal: Principal | undefined, principalClass: string | undefined, request: DecisionRequest, nowMs: number): Decision {
    if (!policy.repeatable || principal === undefined || principalClass === undefined) return decide(policy, principal, request, nowMs);
    const key = `${policy.set}\u0000${policy.version}\u0000${request.method}\u0000${request.path}\u0000${principalClass}`;
    const kept = this.deps.cache.get(key);
    if (kept) return kept;
    const decision = decide(policy, principal, request, nowMs);
    if (this.deps.cache.set(key, decision, this.deps.ttlMs, () => 512 + 2 * key.length + decisionBytes(decision))) freeze(decision);
    return decision;
  }
}

/** A decision's size, roughly: its reasons' text dominates. */
function decisionBytes(d: Decision): number {
  let n = 256 + 2 * (d.route?.length ?? 0);
  for (const r of d.reasons) n += 64 + 2 * r.detail.length;
  for (const e of d.expressions) n += 64 + 2 * ((e.text?.length ?? 0) + (e.error?.length ?? 0));
  return n;
}

/** A kept decision, read by every request that shares it: nobody may change it (the policy's rules and permissions it points to are the policy's). */
function freeze(d: Decision): void {
  for (const r of d.reasons) Object.freeze(r);
  for (const e of d.expressions) Object.freeze(e);
  Object.freeze(d.reasons);
  Object.freeze(d.expressions);
  if (d.object) Object.freeze(d.object);
  if (d.match) {
    Object.freeze(d.match.pathParameters);
    Object.freeze(d.match);
  }
  Object.freeze(d);
}

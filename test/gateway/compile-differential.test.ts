import { describe, expect, it } from 'vitest';
import type { Decided } from '../../core/authorizer/authorize';
import { decide, type Decision } from '../../core/authorizer/decide';
import { compilePolicy, principalClass, type CompiledPolicy } from '../../core/authorizer/policy';
import { SharedDecisions } from '../../core/authorizer/shared';
import { LruCache } from '../../core/cache/lru';
import { IamAnswers, type WrittenStatements } from '../../core/gateway/answers';
import { parseMethodArn } from '../../core/gateway/arn';
import type { IamAuthorizerResponse } from '../../core/gateway/iam';
import { createLogger } from '../../core/log';
import { compileRouteTable, type RouteRule } from '../../core/policy/routes';
import type { Permission, Principal, Role } from '../../core/rbac/types';
import { answerFor, requestOf } from '../support/answers';
import { mulberry32, pick, type Rng } from '../support/prng';

/**
 * The IAM answer compiler against a fresh decide(), on generated worlds: random route
 * tables (literals, {param}, {proxy+}, ANY, org and owner bindings, overlapping prefixes,
 * public routes, conditions and gates on principal data, custom roles with negated
 * permissions), random principals (users with site and org roles; personal, org and site
 * tokens with scopes) and probe ARNs for every route with awkward values (`:`, `%2F`,
 * `*`, `?`, unicode). For each principal the answer compiled for one probe is applied, as
 * API Gateway's cache would, to every other probe, and its verdict compared with a fresh
 * decision. Seeded; a failure prints its seed and a shrunk case.
 *
 * The contract checked (DESIGN §5, README "Cache-correct answers"):
 * - a cached answer never allows what a fresh decision denies (every probe, including
 *   paths no rule routes: one segment deeper or shallower than a route);
 * - it equals the fresh decision on every routed probe, unless the answer reports itself
 *   inexact for that route (left out, or cut to the live request), and except a path
 *   holding a percent escape other than `%2F`, which the cache refuses by design;
 * - the live probe gets the live decision (or, when it holds `*`/`?` and no statement
 *   covers it, a 403).
 */

const PREFIX = 'arn:aws:execute-api:us-east-1:123456789012:api1/prod';
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);

const some = <T,>(r: Rng, xs: readonly T[], p = 0.4): T[] => xs.filter(() => r() < p);

const LITERALS = ['a', 'b', 'orgs', 'items', 'secret', 'v1'];
const ORGS = ['acme', 'globex', 'initech'];
const USERS = ['alice', 'bob', 'carol'];
const RESOURCES = ['item', 'secret', 'org', 'report'];
const ACTIONS = ['read', 'write', 'delete'];
const CONDITIONS = ['principal.emailVerified == true', '"ops" in principal.groups', 'resource.orgId == "acme"', 'principal.id == "alice"', 'principal.kind == "user"', 'principal.kind != "anonymous"'];
const GATES = ['principal.kind != "anonymous"', 'principal.id != "carol"', '"banned" in principal.groups == false'];
/** Parameter values of probes: ids, awkward characters, escapes, values equal to literals. */
const VALUES = [...ORGS, ...USERS, 'x', 'y z', 'a:b', 'ünï', '*', 'a*b', '?', 'a%2Fb', '%61cme', 'items', 'secret', 'svc|1'];

const ROLES: Role[] = [
  { name: 'reader', site: [], org: [{ resource: 'item', action: 'read' }, { resource: 'report', action: 'read' }], member: [{ resource: 'secret', action: 'read' }], user: [] },
  { name: 'no-delete', site: [], org: [{ resource: '*', action: 'delete', negate: true }], member: [], user: [] },
  { name: 'no-secret', site: [{ resource: 'secret', action: '*', negate: true }], org: [{ resource: 'secret', action: '*', negate: true }], member: [], user: [] },
  { name: 'writer', site: [{ resource: 'item', action: '*' }], org: [], member: [], user: [{ resource: 'report', action: '*' }] },
];

interface World {
  seed: number;
  routes: RouteRule[];
  gate?: string;
}

function randomWorld(seed: number): World {
  const r = mulberry32(seed);
  const routes: RouteRule[] = [];
  const count = 2 + Math.floor(r() * 9);
  for (let i = 0; i < count; i++) {
    const segs: string[] = [];
    const params: string[] = [];
    const n = 1 + Math.floor(r() * 4);
    for (let k = 0; k < n; k++) {
      const roll = r();
      if (k === n - 1 && roll < 0.15) segs.push('{proxy+}');
      else if (roll < 0.5) segs.push(pick(r, LITERALS));
      else {
        const name = `p${k}`;
        params.push(name);
        segs.push(`{${name}}`);
      }
    }
    const rule: RouteRule = { route: `${pick(r, ['GET', 'GET', 'POST', 'DELETE', 'ANY'])} /${segs.join('/')}`, resource: pick(r, RESOURCES), action: pick(r, ACTIONS) };
    if (params.length > 0 && r() < 0.6) rule.org = `{${params[0]}}`;
    else if (r() < 0.15) rule.org = 'acme';
    if (params.length > 1 && r() < 0.4) rule.owner = `{${params[1]}}`;
    else if (params.length === 1 && !rule.org && r() < 0.3) rule.owner = `{${params[0]}}`;
    if (r() < 0.12) rule.public = true;
    if (r() < 0.25) rule.condition = pick(r, CONDITIONS);
    try {
      compileRouteTable([...routes, rule]);
      routes.push(rule);
    } catch {
      // a duplicate shape: skip it
    }
  }
  return { seed, routes, ...(r() < 0.15 ? { gate: pick(r, GATES) } : {}) };
}

function randomPrincipals(seed: number): Principal[] {
  const r = mulberry32(seed ^ 0x5bd1e995);
  const scopes = (): Permission[] | undefined => (r() < 0.4 ? undefined : some(r, [...RESOURCES, '*'], 0.4).map((resource) => ({ resource, action: pick(r, [...ACTIONS, '*']) })));
  const out: Principal[] = [];
  for (let i = 0; i < 8; i++) {
    const id = pick(r, USERS);
    const orgs: Record<string, string[]> = {};
    for (const org of some(r, ORGS, 0.5)) orgs[org] = some(r, ['org-admin', 'org-member', 'org-viewer', 'reader', 'no-delete', 'no-secret'], 0.35);
    const user: Principal = {
      id,
      kind: 'user',
      siteRoles: some(r, ['site-admin', 'site-viewer', 'no-secret', 'writer'], 0.15),
      orgs,
      emailVerified: r() < 0.5,
      email: `${id}@x.test`,
      ...(r() < 0.5 ? { groups: some(r, ['ops', 'dev', 'banned'], 0.4) } : {}),
    };
    const kind = r();
    if (kind < 0.55) out.push(user);
    else if (kind < 0.75) {
      const s = scopes();
      out.push({ ...user, token: { id: `t${i}`, kind: 'personal', ownerId: id, ...(s ? { scopes: s } : {}) } });
    } else if (kind < 0.9) {
      const org = pick(r, ORGS);
      const s = scopes();
      out.push({ id: `token:t${i}`, kind: 'service', siteRoles: [], orgs: { [org]: [] }, token: { id: `t${i}`, kind: 'org', orgId: org, ...(s ? { scopes: s } : {}) } });
    } else {
      const s = scopes();
      out.push({ id: `token:t${i}`, kind: 'service', siteRoles: [], orgs: {}, token: { id: `t${i}`, kind: 'site', ...(s ? { scopes: s } : {}) } });
    }
  }
  return out;
}

/** Probe ARNs for every route: methods it and ANY admit, parameters filled with awkward values. */
function probesFor(world: World): string[] {
  const r = mulberry32(world.seed ^ 0x27d4eb2d);
  const out = new Set<string>();
  for (const rule of world.routes) {
    const [method, path] = rule.route.split(' ') as [string, string];
    for (let i = 0; i < 12; i++) {
      const filled = path.replace(/\{[A-Za-z0-9_]+\+?\}/g, (p) =>
        p.endsWith('+}') ? Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(r, VALUES)).join('/') : pick(r, VALUES),
      );
      const m = method === 'ANY' ? pick(r, METHODS) : r() < 0.1 ? pick(r, METHODS) : method;
      out.add(`${PREFIX}/${m}${filled}`);
      // Paths beside the route, which API Gateway may still route (a `{proxy+}` route of the
      // API with no rule of its own): one segment deeper, one shallower.
      if (i < 3) {
        out.add(`${PREFIX}/${m}${filled}/${pick(r, VALUES)}`);
        const up = filled.slice(0, filled.lastIndexOf('/'));
        if (up) out.add(`${PREFIX}/${m}${up}`);
      }
    }
  }
  return [...out];
}

interface Inexact {
  cut: boolean;
  omitted: Set<string>;
}

/** The answer IamAnswers gives for `current`, and what it reported about itself. */
function answerOf(policy: CompiledPolicy, principal: Principal, current: string): { answer: IamAuthorizerResponse; live: boolean; inexact: Inexact } {
  const { answer, allowed, lines } = answerFor(policy, principal, current, NOW);
  const omitted = new Set(lines.filter((l) => l.message === 'authorizer.entitlements-omitted').flatMap((l) => l.routes as string[]));
  const cut = lines.some((l) => l.message === 'authorizer.policy-too-large' || l.message === 'authorizer.answer-cut');
  return { answer, live: allowed, inexact: { cut, omitted } };
}

/** API Gateway's verdict for a cached answer (explicit Deny wins; `*` any run, `?` one character). */
function verdict(answer: IamAuthorizerResponse, arn: string): boolean {
  let allowed = false;
  for (const st of answer.policyDocument.Statement) {
    if (!st.Resource.some((r) => globRegExp(r).test(arn))) continue;
    if (st.Effect === 'Deny') return false;
    allowed = true;
  }
  return allowed;
}
const regexps = new Map<string, RegExp>();
function globRegExp(glob: string): RegExp {
  let re = regexps.get(glob);
  if (!re) {
    re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\/]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
    regexps.set(glob, re);
  }
  return re;
}

interface Disagreement {
  kind: 'unsound' | 'inexact' | 'live';
  probe: string;
  cached: boolean;
  fresh: boolean;
}

/** Every disagreement of one answer with fresh decisions, by the contract above. */
function check(policy: CompiledPolicy, principal: Principal, current: string, probes: readonly string[], answer: IamAuthorizerResponse, live: boolean, inexact: Inexact): { disagreements: Disagreement[]; compared: number; entitled: number; served: number } {
  const disagreements: Disagreement[] = [];
  let compared = 0;
  let entitled = 0;
  let served = 0;
  const liveCached = verdict(answer, current);
  const nameable = !/[*?]/.test(current);
  if (liveCached !== live && (nameable || liveCached)) disagreements.push({ kind: 'live', probe: current, cached: liveCached, fresh: live });
  for (const probe of probes) {
    if (probe === current) continue;
    const d = decide(policy, principal, requestOf(probe), NOW);
    const cached = verdict(answer, probe);
    compared++;
    if (d.allowed) {
      entitled++;
      if (cached) served++;
    }
    if (cached && !d.allowed) {
      // Never more permissive than a fresh decision, whether a rule routes the path or none does.
      disagreements.push({ kind: 'unsound', probe, cached, fresh: d.allowed });
      continue;
    }
    if (cached === d.allowed || !d.match) continue;
    const escaped = /%(?!2F)/i.test(probe.slice(PREFIX.length));
    if (escaped || inexact.cut || inexact.omitted.has(d.route!)) continue;
    disagreements.push({ kind: 'inexact', probe, cached, fresh: d.allowed });
  }
  return { disagreements, compared, entitled, served };
}

function policyOf(world: World): CompiledPolicy {
  return compilePolicy({ version: '1', routes: world.routes, ...(world.gate ? { gate: world.gate } : {}), roles: ROLES });
}

/** Removes rules while the failure stays, for a small case to print. */
function shrink(world: World, principal: Principal, current: string): World {
  let routes = world.routes;
  for (let i = routes.length - 1; i >= 0; i--) {
    const fewer = routes.filter((_, k) => k !== i);
    const candidate = { ...world, routes: fewer };
    const policy = policyOf(candidate);
    const { answer, live, inexact } = answerOf(policy, principal, current);
    if (check(policy, principal, current, probesFor(candidate), answer, live, inexact).disagreements.length > 0) routes = fewer;
  }
  return { ...world, routes };
}

describe('IAM answers against fresh decisions (generated worlds)', () => {
  it('agree on at least 100,000 probes, never allow more, and are exact unless they say so', () => {
    const base = Number(process.env.GATEHOUSE_DIFF_SEED ?? 20261203);
    let compared = 0;
    let answers = 0;
    let exactAnswers = 0;
    let worlds = 0;
    let entitled = 0;
    let served = 0;
    for (let w = 0; compared < 100_000 && w < 2000; w++) {
      const world = randomWorld(base + w);
      worlds++;
      const policy = policyOf(world);
      const probes = probesFor(world);
      const r = mulberry32(world.seed);
      for (const principal of randomPrincipals(world.seed)) {
        const current = pick(r, probes);
        const { answer, live, inexact } = answerOf(policy, principal, current);
        answers++;
        if (!inexact.cut && inexact.omitted.size === 0) exactAnswers++;
        const result = check(policy, principal, current, probes, answer, live, inexact);
        compared += result.compared;
        entitled += result.entitled;
        served += result.served;
        if (result.disagreements.length > 0) {
          const small = shrink(world, principal, current);
          const smallAnswer = answerOf(policyOf(small), principal, current);
          throw new Error(
            `seed ${world.seed}: ${result.disagreements.length} disagreement(s), first ${JSON.stringify(result.disagreements[0])}\n` +
              `shrunk routes: ${JSON.stringify(small.routes)}\ngate: ${JSON.stringify(small.gate ?? null)}\nprincipal: ${JSON.stringify(principal)}\n` +
              `current: ${current}\nanswer: ${JSON.stringify(smallAnswer.answer.policyDocument.Statement)}`,
          );
        }
      }
    }
    expect(compared).toBeGreaterThanOrEqual(100_000);
    // Not vacuous: most answers are exact, on tables built to overlap (the rest report the
    // routes they leave out). About 60%: a `{param}` route beside a deeper route the principal
    // also holds (`/a/{p}` and `/a/{p}/b`) cannot be listed without also allowing the unrouted
    // `/a/x/c`, since IAM's `*` crosses `/` and a Deny would take `/a/x/b` too.
    expect(exactAnswers / answers).toBeGreaterThan(0.5);
    // And much of what principals may do is served from the cache (these tables are built
    // to collide, and probe values holding `*`, `?` or a percent escape are refused by design).
    expect(served / entitled).toBeGreaterThan(0.5);
    console.log(
      `compile differential: ${worlds} worlds, ${answers} answers (${((100 * exactAnswers) / answers).toFixed(1)}% exact), ${compared} probe comparisons, 0 disagreements; ` +
        `${((100 * served) / entitled).toFixed(1)}% of ${entitled} entitled probes allowed from the cache`,
    );
  }, 120_000); // ~15 s alone; a shared 2-core machine under load took 21 s

  it('catches a broken compiler: answers without their Denies, and a widened wildcard, disagree', () => {
    const base = 4242;
    const found = { noDeny: 0, widened: 0 };
    for (let w = 0; w < 300 && (found.noDeny === 0 || found.widened === 0); w++) {
      const world = randomWorld(base + w);
      const policy = policyOf(world);
      const probes = probesFor(world);
      for (const principal of randomPrincipals(world.seed)) {
        const current = probes[0]!;
        const { answer, live, inexact } = answerOf(policy, principal, current);
        const statements = answer.policyDocument.Statement;
        const noDeny = { ...answer, policyDocument: { ...answer.policyDocument, Statement: statements.filter((s) => s.Effect !== 'Deny') } };
        const widened = {
          ...answer,
          policyDocument: {
            ...answer.policyDocument,
            Statement: statements.map((s) => (s.Effect === 'Allow' ? { ...s, Resource: s.Resource.map((x) => x.replace(/\/[^/*]+$/, '/*')) } : s)),
          },
        };
        if (check(policy, principal, current, probes, noDeny, live, inexact).disagreements.some((d) => d.kind === 'unsound')) found.noDeny++;
        if (check(policy, principal, current, probes, widened, live, inexact).disagreements.some((d) => d.kind === 'unsound')) found.widened++;
      }
    }
    expect(found.noDeny).toBeGreaterThan(0);
    expect(found.widened).toBeGreaterThan(0);
  });
});

/**
 * Decisions and answers shared by principals equal in what the policy reads of them
 * (`SharedDecisions`, `IamAnswers`' shared answers) against fresh ones: each generated
 * principal is joined by look-alikes that differ in one thing a policy may read (id, email,
 * verified email, groups, token scopes, claims), and every (principal, probe) pair is asked
 * three times in a shuffled order (a key is kept from its second request), so kept decisions and answers serve look-alikes. Each must be
 * the fresh decision and the fresh answer.
 */
describe('decisions and answers shared by principal class (generated worlds)', () => {
  const lookAlikes = (p: Principal, r: Rng): Principal[] => {
    const out: Principal[] = [p, { ...p, email: 'other@x.test' }, { ...p, emailVerified: !p.emailVerified }, { ...p, groups: some(r, ['ops', 'dev', 'banned'], 0.5) }, { ...p, claims: { jti: String(r()) } }];
    if (p.kind === 'user') out.push({ ...p, id: pick(r, USERS) });
    if (p.token) out.push({ ...p, token: { ...p.token, scopes: [{ resource: pick(r, RESOURCES), action: '*' }] } });
    return out;
  };

  const run = (worldCount: number) => {
    let asked = 0;
    let kept = 0;
    let keptAnswers = 0;
    const disagreements: string[] = [];
    for (let w = 0; w < worldCount && disagreements.length === 0; w++) {
      const world = randomWorld(20261204 + w);
      const policy = policyOf(world);
      if (!policy.repeatable) continue;
      const probes = probesFor(world);
      const r = mulberry32(world.seed ^ 0x9e3779b9);
      const decisions = new LruCache<string, Decision>({ maxEntries: 100_000, admitFromSecondSet: true });
      const sharedAnswers = new LruCache<string, IamAuthorizerResponse>({ maxEntries: 100_000, admitFromSecondSet: true });
      const memo = new SharedDecisions({ cache: decisions, ttlMs: 60_000 });
      const logger = createLogger({ level: 'error', sink: () => {} });
      const answers = new IamAnswers({ cache: new LruCache({ maxEntries: 1000 }), shared: sharedAnswers, logger, now: () => NOW, ttlMs: 60_000 });
      // The fresh side keeps only compiled statements (their own differential is above).
      const freshStatements = new LruCache<string, WrittenStatements | 'cut'>({ maxEntries: 1000 });
      const principals = randomPrincipals(world.seed).slice(0, 3).flatMap((p) => lookAlikes(p, r));
      const pairs: [Principal, string][] = [];
      for (const p of principals) for (const probe of probes.filter(() => r() < 0.1)) pairs.push([p, probe], [p, probe], [p, probe]);
      for (let i = pairs.length - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [pairs[i], pairs[j]] = [pairs[j]!, pairs[i]!];
      }
      for (const [principal, current] of pairs) {
        const request = requestOf(current);
        const cls = principalClass(policy, principal);
        const decision = memo.decide(policy, principal, cls, request, NOW);
        asked++;
        const fresh = decide(policy, principal, request, NOW);
        if (JSON.stringify(decision) !== JSON.stringify(fresh)) {
          disagreements.push(`seed ${world.seed}: decision for ${JSON.stringify(principal)} at ${current}: ${decision.code}, fresh ${fresh.code}`);
          break;
        }
        const result: Decided = { effect: decision.allowed ? 'allow' : 'deny', code: decision.code, decision, principal, principalClass: cls, policy, validUntilMs: NOW + 30_000 };
        if (principal.token) result.token = { id: principal.token.id } as Decided['token'] & object;
        const answer = answers.answer(result, request, parseMethodArn(current)!, current);
        const freshAnswer = answerFor(policy, principal, current, NOW, freshStatements).answer;
        if (JSON.stringify(answer) !== JSON.stringify(freshAnswer)) {
          disagreements.push(`seed ${world.seed}: answer for ${JSON.stringify(principal)} at ${current} differs from a fresh one`);
          break;
        }
      }
      kept += decisions.hits;
      keptAnswers += sharedAnswers.hits;
    }
    return { asked, kept, keptAnswers, disagreements };
  };

  it('are the fresh decision and the fresh answer for every look-alike', () => {
    const { asked, kept, keptAnswers, disagreements } = run(40);
    expect(disagreements).toEqual([]);
    expect(asked).toBeGreaterThan(2_000);
    // Kept decisions and answers served a good share of the requests: both were exercised.
    expect(kept).toBeGreaterThan(asked / 4);
    expect(keptAnswers).toBeGreaterThan(asked / 10);
    console.log(`shared decisions: ${asked} asked, ${kept} decisions and ${keptAnswers} answers served from the caches`);
  });
});

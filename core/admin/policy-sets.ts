import { createHash } from 'node:crypto';
import { z } from 'zod';
import { compilePolicy } from '../authorizer/policy';
import { Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed, Unprocessable } from '../errors';
import { parseBody, parseQuery, pageFields, type ApiRequest, type ApiResponse, type Endpoint } from '../http/api';
import { epochSeconds, listOf, type ErrorSpec, type RouteSpecs } from '../http/spec';
import { checkPrecondition, etag, readPrecondition } from '../http/preconditions';
import { ADMIN_SET, ADMIN_SET_VERSION, adminSetRoutes, DEFAULT_SET } from '../policy/admin-set';
import { validateExpression } from '../policy/expression';
import type { PolicyContent } from '../policy/policy-diff';
import { HISTORY_KEEP, parseVersion } from '../policy/policy-history';
import { applyRoutePatch, checkApiId, checkSetName, validatePolicyTests, type PolicyTest } from '../policy/policy-set';
import { runPolicyTests, type PolicyTestResult } from '../policy/policy-tests';
import { validateRouteRules, type RouteRule } from '../policy/routes';
import { decide } from '../rbac/decide';
import type { Principal } from '../rbac/types';
import type { CandidateState, HistoryNote, SetChange, StoredCandidate, StoredSet, VersionSummary } from '../store/dynamo/policy';
import { type AdminDeps, actorId, audited, freshCatalog, nowSeconds } from './deps';

/**
 * Fields a GET answers that a write does not take: accepted (and ignored) so that what a
 * GET returns can be sent back as is. The precondition is the `If-Match` header, never these.
 */
const readOnly = { version: z.unknown().optional(), warnings: z.unknown().optional() };
const setBody = z.strictObject({ routes: z.array(z.unknown()), gate: z.string().nullable().optional(), tests: z.array(z.unknown()).optional(), ...readOnly });
const patchBody = z.strictObject({ upsert: z.array(z.unknown()).optional(), remove: z.array(z.unknown()).optional(), gate: z.string().nullable().optional() });
/** The body of `PUT /policies/routes` (what its GET answers is accepted: `version`, `warnings` are read-only). */
export const routesBody = z.strictObject({ routes: z.array(z.unknown()), ...readOnly });
/** The body of `PUT /policies/gate`. */
export const gateBody = z.strictObject({ expression: z.string().nullable(), ...readOnly });
const bindingBody = z.strictObject({ set: z.string().max(200), apiId: z.unknown().optional(), version: z.unknown().optional() });
const pageQuery = z.strictObject(pageFields);

type Warning = { route: string; code: string; message: string };

const validateCondition = (t: string) => void validateExpression(t);

/** Warnings for an expression: what a cached authorizer answer cannot honour. */
export function expressionWarnings(route: string, text: string): Warning[] {
  const v = validateExpression(text);
  const out: Warning[] = [];
  if (v.readsUncachedRequestData) {
    out.push({ route, code: 'condition-not-cacheable', message: `reads ${v.reads.filter((r) => r.startsWith('request')).join(', ')}, which is not in the authorizer cache key: such requests are decided live only; use an authorizer TTL of 0 for this route` });
  }
  if (v.timeDependent) out.push({ route, code: 'condition-time-dependent', message: 'reads now: a cached answer may outlive the condition by the authorizer TTL' });
  return out;
}

/** Warnings for a route table (and its gate). */
export function policyWarnings(routes: readonly RouteRule[], gate?: string | null): Warning[] {
  const out = routes.flatMap((r) => {
    if (typeof r.condition !== 'string') return [];
    try {
      return expressionWarnings(r.route, r.condition);
    } catch {
      return []; // validated when written; a rule that no longer validates denies at run time
    }
  });
  if (typeof gate === 'string') {
    try {
      out.push(...expressionWarnings('gate', gate));
    } catch {
      /* as above */
    }
  }
  return out;
}

const routeRuleSchema = z.strictObject({
  route: z.string().meta({ description: '`METHOD /path/{param}`; `ANY` and a trailing `{proxy+}` allowed' }),
  resource: z.string(),
  action: z.string(),
  org: z.string().optional().meta({ description: '`{param}` or a literal org id' }),
  owner: z.string().optional().meta({ description: '`{param}` naming the owner' }),
  condition: z.string().optional().meta({ description: 'a jexl expression that must be true' }),
  public: z.boolean().optional(),
}).meta({ title: 'RouteRule' });
const warningSchema = z.strictObject({ route: z.string(), code: z.string(), message: z.string() }).meta({ title: 'PolicyWarning' });
const policyTestSchema = z.looseObject({
  name: z.string(),
  principal: z.record(z.string(), z.unknown()),
  request: z.looseObject({ method: z.string(), path: z.string() }),
  expect: z.union([z.enum(['allow', 'deny']), z.strictObject({ decision: z.enum(['allow', 'deny']), code: z.string().optional() })]),
}).meta({ title: 'PolicyTest' });
const setSchema = z.strictObject({
  routes: z.array(routeRuleSchema),
  gate: z.string().nullable(),
  tests: z.array(policyTestSchema),
  version: z.string(),
  warnings: z.array(warningSchema),
}).meta({ title: 'PolicySet' });
const setSummarySchema = z.strictObject({
  name: z.string(),
  version: z.string(),
  builtIn: z.boolean(),
  readOnly: z.boolean(),
  bindings: z.number().int().nullable().meta({ description: 'how many APIs are bound to it (null for the built-in sets)' }),
  updatedAt: epochSeconds.nullable(),
  updatedBy: z.string().nullable(),
}).meta({ title: 'PolicySetSummary' });
const bindingSchema = z.strictObject({ apiId: z.string(), set: z.string(), version: z.string() }).meta({ title: 'ApiBinding' });
const bindingSummarySchema = bindingSchema.extend({ updatedAt: epochSeconds.nullable(), updatedBy: z.string().nullable() }).meta({ title: 'ApiBindingSummary' });
const routesView = z.strictObject({ routes: z.array(routeRuleSchema), version: z.string(), warnings: z.array(warningSchema) });
const gateView = z.strictObject({ expression: z.string().nullable(), version: z.string(), warnings: z.array(warningSchema) });

// Shadow mode (DESIGN §9): a candidate version of a set, decided beside it.
/** Fields a candidate GET answers that its PUT does not take (accepted and ignored, like `version`). */
const candidateReadOnly = { ...readOnly, candidate: z.unknown().optional(), basedOn: z.unknown().optional(), createdAt: z.unknown().optional(), createdBy: z.unknown().optional() };
const candidateBody = z.strictObject({ routes: z.array(z.unknown()), gate: z.string().nullable().optional(), tests: z.array(z.unknown()).optional(), ...candidateReadOnly });
const candidateSchema = z.strictObject({
  routes: z.array(routeRuleSchema),
  gate: z.string().nullable(),
  tests: z.array(policyTestSchema),
  candidate: z.string().meta({ description: 'the candidate\'s number within its set (its ETag); never reused' }),
  basedOn: z.string().meta({ description: 'the version of the live set it is compared against' }),
  createdAt: epochSeconds,
  createdBy: z.string(),
  warnings: z.array(warningSchema),
}).meta({ title: 'PolicyCandidate' });
const shadowOutcome = z.enum(['allow', 'deny', 'unauthorized']);
const shadowReportSchema = z.strictObject({
  set: z.string(),
  candidate: z.string(),
  basedOn: z.string(),
  liveVersion: z.string().meta({ description: 'the live set\'s version now' }),
  stale: z.boolean().meta({ description: 'the live set was written since the candidate was stored: promote would be refused (412)' }),
  compared: z.number().int().meta({ description: 'requests decided by both, over every container (flushed at most once a minute per container)' }),
  differing: z.number().int().meta({ description: 'of those, how many the candidate would have answered otherwise' }),
  failed: z.number().int().meta({ description: 'shadow decisions that failed (the live answer stood)' }),
  unkeyed: z.number().int().meta({ description: 'differences counted beyond a container\'s cap on kinds: in `differing`, not in `differences`' }),
  firstAt: epochSeconds.nullable(),
  lastAt: epochSeconds.nullable(),
  differences: z.array(z.strictObject({ route: z.string().nullable(), candidateRoute: z.string().nullable(), live: shadowOutcome, candidate: shadowOutcome, count: z.number().int() })).meta({ description: 'by kind (the rule each side matched, both outcomes), most frequent first' }),
  examples: z.array(z.strictObject({
    at: epochSeconds,
    principalId: z.string(),
    method: z.string(),
    path: z.string(),
    route: z.string().nullable(),
    candidateRoute: z.string().nullable(),
    live: z.strictObject({ outcome: shadowOutcome, code: z.string() }),
    candidate: z.strictObject({ outcome: shadowOutcome, code: z.string() }),
  })).meta({ description: 'a bounded sample of differing decisions (never a credential)' }),
  truncated: z.boolean(),
}).meta({ title: 'ShadowReport' });

const ETAG = { ETag: 'the version, quoted: send it back as `If-Match` to write' };
const LISTING_TAG = { ETag: 'a weak tag of the listing (changes when it does; never a precondition)' };
const CREATED = { ...ETAG, Location: 'where the new entity is read' };
const ifMatch = (what: string) => [
  { name: 'If-Match', description: `\`"<version>"\` (the ETag of ${what} as read) to replace exactly that version, or \`*\` to replace whatever is there on purpose`, schema: z.string() },
  { name: 'If-None-Match', description: '`*`: create only (refused when it exists)', schema: z.string() },
];
const precondition: ErrorSpec[] = [
  { status: 400, code: 'invalid-if-match', when: 'If-Match is not `*` or a list of quoted entity tags' },
  { status: 400, code: 'invalid-if-none-match', when: 'If-None-Match on a write is anything but `*`' },
  { status: 400, code: 'invalid-precondition', when: 'both If-Match and If-None-Match were sent' },
  { status: 412, code: 'version-mismatch', when: 'the version in If-Match is not the current one (someone wrote meanwhile): read again' },
  { status: 412, code: 'already-exists', when: 'If-None-Match: * and it exists' },
  { status: 428, code: 'precondition-required', when: 'neither If-Match nor If-None-Match was sent: policy writes must say what they replace' },
];
const policyRead: ErrorSpec = { status: 403, code: 'cannot-read-policy', when: 'the caller holds no site-level policy:read' };
const policyList: ErrorSpec = { status: 403, code: 'cannot-list-policy', when: 'the caller holds no site-level policy:list' };
const policyWrite: ErrorSpec = { status: 403, code: 'cannot-update-policy', when: 'the caller holds no site-level policy:update' };
const policyDelete: ErrorSpec = { status: 403, code: 'cannot-delete-policy', when: 'the caller holds no site-level policy:delete' };
const expressionError: ErrorSpec = { status: 400, code: 'invalid-expression', when: 'an expression does not parse or uses what is not allowed' };
const tableErrors: ErrorSpec[] = [
  { status: 400, code: 'invalid-route', when: 'a route rule is malformed' },
  { status: 400, code: 'invalid-routes', when: '`routes` is not an array, or too long' },
  { status: 400, code: 'duplicate-route', when: 'two rules have the same route' },
  { status: 400, code: 'policy-too-large', when: 'the stored table would not fit in one DynamoDB item' },
  expressionError,
];
const setName: ErrorSpec = { status: 400, code: 'invalid-set-name', when: 'the set name is not a lower-case slug (a letter, then letters, digits and dashes, at most 63)' };
const apiIdError: ErrorSpec = { status: 400, code: 'invalid-api-id', when: 'the API id is not ten lower-case letters and digits' };
const readOnlySet: ErrorSpec = { status: 409, code: 'read-only-set', when: 'the set is the built-in `admin` set' };
const setMissing: ErrorSpec = { status: 404, code: 'set-not-found', when: 'there is no such set' };
const bindingRace: ErrorSpec = { status: 409, code: 'binding-changed', when: 'the set the API was bound to changed meanwhile: read the binding again' };
const candidateMissing: ErrorSpec = { status: 404, code: 'candidate-not-found', when: 'the set has no candidate' };
const CANDIDATE_ETAG = { ETag: 'the candidate\'s number, quoted: send it back as `If-Match` to replace or discard it' };

// Policy tests on writes, the test endpoint, history and rollback (DESIGN §9).
const testBody = z.strictObject({ routes: z.array(z.unknown()).optional(), gate: z.string().nullable().optional(), tests: z.array(z.unknown()).optional() });
const rollbackBody = z.strictObject({ version: z.union([z.string().max(32), z.number()]).meta({ description: 'the version to restore, as listed (`"12"` or `12`)' }) });
const decisionEnum = z.enum(['allow', 'deny']);
const testResultSchema = z.strictObject({
  name: z.string(),
  passed: z.boolean(),
  expected: z.strictObject({ decision: decisionEnum, code: z.string().optional() }),
  actual: z.strictObject({ decision: decisionEnum, code: z.string().meta({ description: 'the decision\'s reason code (`allow`, `public`, `no-route`, `gate-denied`, `not-member`, …)' }), route: z.string().optional().meta({ description: 'the route rule that matched' }) }),
}).meta({ title: 'PolicyTestResult' });
const testRunSchema = z.strictObject({
  version: z.string().meta({ description: 'the stored version that what the candidate left out came from' }),
  passed: z.number().int(),
  failed: z.number().int(),
  results: z.array(testResultSchema),
}).meta({ title: 'PolicyTestRun' });
const names = z.array(z.string());
const changeSummarySchema = z.strictObject({
  routes: z.strictObject({ added: names, removed: names, changed: names }).meta({ description: 'route keys' }),
  gate: z.boolean().meta({ description: 'whether the gate changed' }),
  tests: z.strictObject({ added: names, removed: names, changed: names }).meta({ description: 'test names' }),
  truncated: z.boolean().meta({ description: 'a list was cut at 20 names: read both versions for the whole change' }),
}).meta({ title: 'PolicyChangeSummary' });
const versionSummarySchema = z.strictObject({
  version: z.string(),
  action: z.enum(['create', 'put', 'patch', 'put-routes', 'put-gate', 'rollback', 'promote', 'delete', 'write', 'baseline']).meta({ description: 'what made the version; `baseline`: a version written before history existed, kept by the write that replaced it' }),
  updatedAt: epochSeconds.nullable(),
  updatedBy: z.string().nullable(),
  current: z.boolean().meta({ description: 'the live version of the set' }),
  restoredFrom: z.string().nullable().meta({ description: 'for a rollback, the version it restored' }),
  summary: changeSummarySchema.nullable().meta({ description: 'what changed from the version before (null for a baseline)' }),
}).meta({ title: 'PolicyVersionSummary' });
const versionSchema = versionSummarySchema.extend({ routes: z.array(routeRuleSchema), gate: z.string().nullable(), tests: z.array(policyTestSchema) }).meta({ title: 'PolicyVersion' });
const testsFailed: ErrorSpec = { status: 422, code: 'policy-tests-failed', when: 'a test of the set fails against the version being written (`details.failures`: name, expected, actual decision, reason code and route of each); nothing is written' };
const testInputErrors: ErrorSpec[] = [
  { status: 400, code: 'invalid-tests', when: 'a test is malformed (`details.field` names it)' },
  { status: 400, code: 'unknown-role', when: 'a test\'s principal holds a role that does not exist where it is named (`details.field` names it)' },
  { status: 400, code: 'invalid-scope', when: 'a test\'s token scope is not `resource:action` (`details.field` names it)' },
];
const versionErrors: ErrorSpec[] = [
  { status: 400, code: 'invalid-version', when: 'the version is not a non-negative integer' },
  { status: 404, code: 'version-not-found', when: `the set's history does not hold that version (it keeps the last ${HISTORY_KEEP}; the built-in \`admin\` set has none)` },
];

const CHECK_AND_HISTORY_ROUTE_SPECS: RouteSpecs = {
  'POST /policies/sets/{set}/test': {
    summary: 'Run a set\'s tests against the stored version, or a candidate `{ routes?, gate?, tests? }` (what is left out is the stored one); writes nothing',
    description: 'Answers 200 whether the tests pass or not: `failed` counts the failures. Needs site-level `policy:read` (what a reader could run offline from the set it reads).',
    body: testBody,
    bodyOptional: true,
    responses: { 200: { description: 'each test\'s result', schema: testRunSchema } },
    errors: [policyRead, setName, setMissing, ...tableErrors.filter((e) => e.code !== 'policy-too-large'), ...testInputErrors],
  },
  'GET /policies/sets/{set}/versions': {
    summary: `A set's history, newest first: who wrote each version, when, how, and what changed (the last ${HISTORY_KEEP} versions)`,
    description: 'A deleted set\'s history stays readable. The built-in `admin` set has none.',
    query: pageQuery,
    responses: { 200: { description: 'a page of versions', schema: listOf(versionSummarySchema), headers: LISTING_TAG } },
    errors: [policyRead, setName, setMissing],
  },
  'GET /policies/sets/{set}/versions/{version}': {
    summary: 'One version of a set whole: its routes, gate and tests, and who wrote it',
    responses: { 200: { description: 'the version', schema: versionSchema } },
    errors: [policyRead, setName, setMissing, ...versionErrors],
  },
  'POST /policies/sets/{set}/rollback': {
    summary: 'Write an old version\'s routes and gate back as a new version (`{ version }`), keeping the current tests',
    description: 'A write like any other: needs `If-Match` (the current version), runs the current tests against what it restores (422 when they fail), and is audited.',
    body: rollbackBody,
    headers: ifMatch('`GET /policies/sets/{set}`'),
    responses: { 200: { description: 'the set now', schema: setSchema, headers: ETAG } },
    errors: [policyWrite, setName, readOnlySet, setMissing, ...versionErrors, ...tableErrors, ...testInputErrors.slice(1), testsFailed, ...precondition],
  },
};

/** The policy-set endpoints as the API reference and `docs/openapi.json` describe them. */
export const POLICY_SET_ROUTE_SPECS: RouteSpecs = {
  'GET /policies/routes': { summary: 'The `default` set\'s route table', responses: { 200: { description: 'routes, version and warnings', schema: routesView, headers: ETAG } }, errors: [policyRead] },
  'PUT /policies/routes': {
    summary: 'Replace the `default` set\'s route table',
    description: 'Every route and condition is validated before anything is written; warnings flag what a cached answer cannot honour (`condition-not-cacheable`, `condition-time-dependent`). Needs `If-Match`.',
    body: routesBody,
    headers: ifMatch('`GET /policies/routes`'),
    responses: { 200: { description: 'the stored routes, version and warnings', schema: routesView, headers: ETAG } },
    errors: [policyWrite, ...tableErrors, ...testInputErrors.slice(1), testsFailed, ...precondition],
  },
  'GET /policies/gate': { summary: 'The `default` set\'s gate expression every non-public request must pass', responses: { 200: { description: 'the gate', schema: gateView, headers: ETAG } }, errors: [policyRead] },
  'PUT /policies/gate': {
    summary: 'Set the `default` set\'s gate expression (`null` clears it)',
    description: 'Needs `If-Match` (the ETag of the default set).',
    body: gateBody,
    headers: ifMatch('`GET /policies/gate`'),
    responses: { 200: { description: 'the gate now', schema: gateView, headers: ETAG } },
    errors: [policyWrite, expressionError, ...testInputErrors.slice(1), testsFailed, ...precondition],
  },
  'GET /policies/sets': {
    summary: 'List policy sets: the built-in `admin` (read-only) and `default`, then stored sets by name',
    query: pageQuery,
    responses: { 200: { description: 'a page of sets', schema: listOf(setSummarySchema), headers: LISTING_TAG } },
    errors: [policyList],
  },
  'GET /policies/sets/{set}': {
    summary: 'A policy set: its route table, gate, tests, version and warnings',
    description: 'What it answers is valid input for `PUT` of the same set.',
    responses: { 200: { description: 'the set', schema: setSchema, headers: ETAG } },
    errors: [policyRead, setName, setMissing],
  },
  'PUT /policies/sets/{set}': {
    summary: 'Create or replace a whole policy set (`{ routes, gate?, tests? }`; what is left out is cleared)',
    description: 'Create with `If-None-Match: *`; replace with `If-Match`. The `admin` set is read-only.',
    body: setBody,
    headers: ifMatch('`GET /policies/sets/{set}`'),
    responses: { 200: { description: 'replaced', schema: setSchema, headers: ETAG }, 201: { description: 'created', schema: setSchema, headers: CREATED } },
    errors: [policyWrite, setName, readOnlySet, ...tableErrors, ...testInputErrors, testsFailed, ...precondition],
  },
  'PATCH /policies/sets/{set}': {
    summary: 'Edit rules of a set: `{ upsert?: [rule…], remove?: ["METHOD /path"…], gate?: "…" | null }`',
    description: 'Rules are keyed by route shape (parameter names do not count). Needs `If-Match`.',
    body: patchBody,
    headers: ifMatch('`GET /policies/sets/{set}`'),
    responses: { 200: { description: 'the set now', schema: setSchema, headers: ETAG } },
    errors: [policyWrite, setName, readOnlySet, setMissing, ...tableErrors, { status: 400, code: 'invalid-patch', when: 'nothing to change, or a route both upserted and removed, or named twice' }, { status: 409, code: 'route-not-found', when: 'a removed route is not in the table' }, ...testInputErrors.slice(1), testsFailed, ...precondition],
  },
  'DELETE /policies/sets/{set}': {
    summary: 'Delete a stored policy set no API is bound to',
    description: 'Needs `If-Match`.',
    headers: ifMatch('`GET /policies/sets/{set}`'),
    responses: { 204: { description: 'deleted' } },
    errors: [policyDelete, setName, readOnlySet, setMissing, { status: 409, code: 'set-not-deletable', when: 'the set is `default`' }, { status: 409, code: 'set-in-use', when: 'an API is bound to the set' }, ...precondition],
  },
  'GET /policies/apis': {
    summary: 'List API bindings: which API is decided by which set (unbound APIs use `default`)',
    query: pageQuery,
    responses: { 200: { description: 'a page of bindings', schema: listOf(bindingSummarySchema), headers: LISTING_TAG } },
    errors: [policyList],
  },
  'GET /policies/apis/{apiId}': {
    summary: 'The set an API is bound to',
    responses: { 200: { description: 'the binding', schema: bindingSchema, headers: ETAG } },
    errors: [policyRead, apiIdError, { status: 404, code: 'binding-not-found', when: 'the API is bound to no set (it is decided with `default`)' }],
  },
  'PUT /policies/apis/{apiId}': {
    summary: 'Bind an API to a set that exists (`{ set }`)',
    description: 'Create with `If-None-Match: *`; rebind with `If-Match`.',
    body: bindingBody,
    headers: ifMatch('`GET /policies/apis/{apiId}`'),
    responses: { 200: { description: 'rebound', schema: bindingSchema, headers: ETAG }, 201: { description: 'bound', schema: bindingSchema, headers: CREATED } },
    errors: [policyWrite, apiIdError, setName, { status: 409, code: 'unknown-set', when: 'the set does not exist' }, bindingRace, ...precondition],
  },
  'DELETE /policies/apis/{apiId}': {
    summary: 'Unbind an API (it is decided with `default` again)',
    description: 'Needs `If-Match`.',
    headers: ifMatch('`GET /policies/apis/{apiId}`'),
    responses: { 204: { description: 'unbound' } },
    errors: [policyDelete, apiIdError, { status: 404, code: 'binding-not-found', when: 'the API is bound to no set' }, bindingRace, ...precondition],
  },
  ...CHECK_AND_HISTORY_ROUTE_SPECS,
  // Shadow mode (DESIGN §9).
  'GET /policies/sets/{set}/candidate': {
    summary: 'The set\'s candidate version running in shadow',
    description: 'What it answers is valid input for `PUT` of the candidate.',
    responses: { 200: { description: 'the candidate', schema: candidateSchema, headers: CANDIDATE_ETAG } },
    errors: [policyRead, setName, setMissing, candidateMissing],
  },
  'PUT /policies/sets/{set}/candidate': {
    summary: 'Run a candidate version of a set in shadow (`{ routes, gate?, tests? }`, validated as a set write)',
    description: 'Every request the authorizer decides with the set is then decided by the candidate too, and differences are counted (`GET …/candidate/report`); the live set still answers every request. Authorizers notice a new candidate within the cache TTL. The candidate records the live version it is compared against (`basedOn`). Start with `If-None-Match: *`; replace with `If-Match` (its report starts again).',
    body: candidateBody,
    headers: ifMatch('`GET /policies/sets/{set}/candidate`'),
    responses: { 200: { description: 'replaced', schema: candidateSchema, headers: CANDIDATE_ETAG }, 201: { description: 'stored', schema: candidateSchema, headers: { ...CANDIDATE_ETAG, Location: 'where the candidate is read' } } },
    errors: [policyWrite, setName, readOnlySet, setMissing, { status: 409, code: 'set-not-stored', when: 'the set was never written (a `default` set still empty or in the layout before policy sets): write it once first' }, ...tableErrors, { status: 400, code: 'invalid-tests', when: 'a test is malformed (`details.field` names it)' }, ...precondition],
  },
  'DELETE /policies/sets/{set}/candidate': {
    summary: 'Discard the candidate and its report',
    description: 'Needs `If-Match` (the candidate\'s ETag).',
    headers: ifMatch('`GET /policies/sets/{set}/candidate`'),
    responses: { 204: { description: 'discarded' } },
    errors: [policyWrite, setName, readOnlySet, setMissing, candidateMissing, ...precondition],
  },
  'GET /policies/sets/{set}/candidate/report': {
    summary: 'How the candidate decided beside the live set: totals, differences by kind, examples',
    responses: { 200: { description: 'the report', schema: shadowReportSchema, headers: CANDIDATE_ETAG } },
    errors: [policyRead, setName, setMissing, candidateMissing],
  },
  'POST /policies/sets/{set}/candidate/promote': {
    summary: 'Make the candidate the live set, if the live set is still the version it was compared against',
    description: 'Needs `If-Match` with the live set\'s version, which must also be the candidate\'s `basedOn` (412 otherwise: someone wrote the set meanwhile; store the candidate again to compare it against the new version). The candidate is written as `PUT /policies/sets/{set}` writes a set (same checks), then removed with its report.',
    headers: ifMatch('`GET /policies/sets/{set}` (the live set)'),
    responses: { 200: { description: 'the set now', schema: setSchema, headers: ETAG } },
    errors: [policyWrite, setName, readOnlySet, setMissing, candidateMissing, ...testInputErrors.slice(1), testsFailed, ...precondition],
  },
};

/** A weak ETag over a listing: it changes with the listing, and (weak) never satisfies an If-Match. */
function listingTag(items: unknown): string {
  return `W/"${createHash('sha256').update(JSON.stringify(items)).digest('base64url').slice(0, 22)}"`;
}

/**
 * Policy sets and API bindings over HTTP (DESIGN §6, Policy sets), and the default set's
 * route table and gate under their first names (`/policies/routes`, `/policies/gate`).
 *
 * Every read answers an `ETag` (the version, quoted) and every write needs a precondition:
 * `If-Match: "<version>"` (a stale one is 412 `version-mismatch`), `If-Match: *` to
 * overwrite whatever is there on purpose, or `If-None-Match: *` to create. It is checked
 * against what was read and again, atomically, as a DynamoDB condition on the version
 * stamp in the write's own transaction. Without one the answer is 428
 * `precondition-required`. What a GET returns is valid input for the matching PUT.
 *
 * Per-rule edits: `PATCH /policies/sets/{set}` with `{ upsert?: [rule…], remove?: ["GET
 * /x"…], gate?: "…" | null }`, keyed by route shape (route keys carry slashes, so they
 * make poor URL segments): see `applyRoutePatch`.
 */
export class PolicySetAdmin {
  constructor(private readonly deps: AdminDeps) {}

  routes(): Record<string, Endpoint> {
    return {
      'GET /policies/routes': (r) => this.getRoutes(r),
      'PUT /policies/routes': (r) => this.putRoutes(r),
      'GET /policies/gate': (r) => this.getGate(r),
      'PUT /policies/gate': (r) => this.putGate(r),
      'GET /policies/sets': (r) => this.listSets(r),
      'GET /policies/sets/{set}': (r) => this.getSet(r),
      'PUT /policies/sets/{set}': (r) => this.putSet(r),
      'PATCH /policies/sets/{set}': (r) => this.patchSet(r),
      'DELETE /policies/sets/{set}': (r) => this.deleteSet(r),
      'GET /policies/apis': (r) => this.listBindings(r),
      'GET /policies/apis/{apiId}': (r) => this.getBinding(r),
      'PUT /policies/apis/{apiId}': (r) => this.putBinding(r),
      'DELETE /policies/apis/{apiId}': (r) => this.deleteBinding(r),
      'POST /policies/sets/{set}/test': (r) => this.testSet(r),
      'GET /policies/sets/{set}/versions': (r) => this.listVersions(r),
      'GET /policies/sets/{set}/versions/{version}': (r) => this.getVersion(r),
      'POST /policies/sets/{set}/rollback': (r) => this.rollback(r),
      'GET /policies/sets/{set}/candidate': (r) => this.getCandidate(r),
      'PUT /policies/sets/{set}/candidate': (r) => this.putCandidate(r),
      'DELETE /policies/sets/{set}/candidate': (r) => this.deleteCandidate(r),
      'GET /policies/sets/{set}/candidate/report': (r) => this.candidateReport(r),
      'POST /policies/sets/{set}/candidate/promote': (r) => this.promoteCandidate(r),
    };
  }

  /** Policies are site-wide: every policy endpoint needs `policy:<action>` at site level. */
  private async require(caller: Principal, action: 'read' | 'list' | 'update' | 'delete'): Promise<void> {
    const d = decide(caller, { type: 'policy', action }, await freshCatalog(this.deps));
    if (!d.allowed || d.level !== 'site') throw new Forbidden(`cannot-${action}-policy`);
  }

  private get repo() {
    return this.deps.store.policy;
  }

  private setView(s: { routes: RouteRule[]; gate?: string; tests: PolicyTest[]; version: string }) {
    return { routes: s.routes, gate: s.gate ?? null, tests: s.tests, version: s.version, warnings: policyWarnings(s.routes, s.gate) };
  }

  /** A set to write: not the read-only admin set. */
  private writable(name: string): string {
    if (name === ADMIN_SET) throw new Conflict('read-only-set', 'the admin set is built in and read-only: it is what decides the admin API');
    return name;
  }

  /** Reads a set and checks the request's precondition against it (404 for a missing set unless `creating`). */
  private async base(req: ApiRequest, name: string, options: { creating?: boolean } = {}): Promise<StoredSet> {
    const pre = readPrecondition(req.headers);
    const base = await this.repo.readSet(name);
    if (!base.exists && !options.creating) throw new NotFound('set-not-found', `no policy set ${name}`);
    checkPrecondition(pre, { exists: base.exists, version: String(base.version) }, `policy set ${name}`);
    return base;
  }

  private written(version: number, created: boolean, body: unknown, location?: string): ApiResponse {
    return { status: created ? 201 : 200, headers: { etag: etag(String(version)), ...(created && location ? { location } : {}) }, body };
  }

  async getRoutes(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'read');
    const s = await this.repo.readSet(DEFAULT_SET);
    return { status: 200, headers: { etag: etag(String(s.version)) }, body: { routes: s.routes, version: String(s.version), warnings: policyWarnings(s.routes) } };
  }

  async putRoutes(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'policy.routes.put', target: `policy-set:${DEFAULT_SET}/routes` }, async () => {
      await this.require(caller, 'update');
      const body = parseBody(routesBody, req.body);
      // Every route and condition is validated before anything is read or written.
      const routes = validateRouteRules(body.routes, { validateCondition });
      const base = await this.base(req, DEFAULT_SET);
      const version = await this.writeChecked(base, { routes }, caller, { action: 'put-routes' });
      return this.written(version, false, { routes, version: String(version), warnings: policyWarnings(routes) });
    });
  }

  async getGate(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'read');
    const s = await this.repo.readSet(DEFAULT_SET);
    return { status: 200, headers: { etag: etag(String(s.version)) }, body: { expression: s.gate ?? null, version: String(s.version), warnings: policyWarnings([], s.gate) } };
  }

  async putGate(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'policy.gate.put', target: `policy-set:${DEFAULT_SET}/gate` }, async () => {
      await this.require(caller, 'update');
      const body = parseBody(gateBody, req.body);
      if (body.expression !== null) validateExpression(body.expression);
      const base = await this.base(req, DEFAULT_SET);
      const version = await this.writeChecked(base, { gate: body.expression }, caller, { action: 'put-gate' });
      return this.written(version, false, { expression: body.expression, version: String(version), warnings: policyWarnings([], body.expression) });
    });
  }

  /** Every set: the built-in `admin` and `default` first, then the stored ones by name. */
  async listSets(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'list');
    const q = parseQuery(pageQuery, req.query);
    const page = await this.repo.listSets({ limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
    const stored = page.items.map((s) => ({ name: s.name, version: String(s.version), builtIn: false, readOnly: false, bindings: s.bindings, updatedAt: s.updatedAt ?? null, updatedBy: s.updatedBy ?? null }));
    let items: unknown[] = stored;
    if (!q.cursor) {
      const d = await this.repo.readStamp(DEFAULT_SET);
      items = [
        { name: ADMIN_SET, version: ADMIN_SET_VERSION, builtIn: true, readOnly: true, bindings: null, updatedAt: null, updatedBy: null },
        { name: DEFAULT_SET, version: String(d.version), builtIn: true, readOnly: false, bindings: null, updatedAt: d.updatedAt ?? null, updatedBy: d.updatedBy ?? null },
        ...stored,
      ];
    }
    return { status: 200, headers: { etag: listingTag(items) }, body: { items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } };
  }

  async getSet(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'read');
    const name = checkSetName(req.params.set);
    if (name === ADMIN_SET) {
      return { status: 200, headers: { etag: etag(ADMIN_SET_VERSION) }, body: this.setView({ routes: adminSetRoutes(), tests: [], version: ADMIN_SET_VERSION }) };
    }
    const s = await this.repo.readSet(name);
    if (!s.exists) throw new NotFound('set-not-found', `no policy set ${name}`);
    return { status: 200, headers: { etag: etag(String(s.version)) }, body: this.setView({ ...s, version: String(s.version) }) };
  }

  /** Creates or replaces a whole set: `{ routes, gate?, tests? }` (what is left out is cleared). */
  async putSet(req: ApiRequest, via?: 'promote'): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const target = `policy-set:${String(req.params.set).slice(0, 64)}`;
    return audited(this.deps, { actor: caller, action: 'policy.set.put', target }, async () => {
      await this.require(caller, 'update');
      const name = this.writable(checkSetName(req.params.set));
      const body = parseBody(setBody, req.body);
      const routes = validateRouteRules(body.routes, { validateCondition });
      const gate = body.gate ?? null;
      if (gate !== null) validateExpression(gate);
      const tests = body.tests === undefined ? [] : validatePolicyTests(body.tests);
      const base = await this.base(req, name, { creating: true });
      const version = await this.writeChecked(base, { routes, gate, tests }, caller, { action: via ?? (base.exists ? 'put' : 'create') });
      const view = this.setView({ routes, ...(gate !== null ? { gate } : {}), tests, version: String(version) });
      return this.written(version, !base.exists, view, `/policies/sets/${name}`);
    });
  }

  /** Per-rule edits: `{ upsert?, remove?, gate? }` (see the class comment). */
  async patchSet(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'policy.set.patch', target: `policy-set:${String(req.params.set).slice(0, 64)}` }, async () => {
      await this.require(caller, 'update');
      const name = this.writable(checkSetName(req.params.set));
      const body = parseBody(patchBody, req.body);
      if (body.upsert === undefined && body.remove === undefined && body.gate === undefined) throw new InvalidInput('invalid-patch', 'nothing to change: give upsert, remove or gate');
      // The new rules are validated on their own before anything is read.
      if (body.upsert !== undefined) applyRoutePatch([], { upsert: body.upsert }, { validateCondition });
      if (typeof body.gate === 'string') validateExpression(body.gate);
      const base = await this.base(req, name);
      const routes = body.upsert !== undefined || body.remove !== undefined ? applyRoutePatch(base.routes, body, { validateCondition }) : undefined;
      const version = await this.writeChecked(base, { ...(routes ? { routes } : {}), ...(body.gate !== undefined ? { gate: body.gate } : {}) }, caller, { action: 'patch' });
      const gate = body.gate !== undefined ? body.gate : base.gate;
      return this.written(version, false, this.setView({ routes: routes ?? base.routes, ...(gate ? { gate } : {}), tests: base.tests, version: String(version) }));
    });
  }

  async deleteSet(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'policy.set.delete', target: `policy-set:${String(req.params.set).slice(0, 64)}` }, async () => {
      await this.require(caller, 'delete');
      const name = this.writable(checkSetName(req.params.set));
      if (name === DEFAULT_SET) throw new Conflict('set-not-deletable', 'the default set decides every API not bound to another set: it cannot be deleted (PUT an empty one instead)');
      const base = await this.base(req, name);
      if (base.bindings > 0) {
        const apis = await this.boundTo(name);
        throw new Conflict('set-in-use', `policy set ${name} is bound to ${apis.length > 0 ? apis.join(', ') : `${base.bindings} API(s)`}: bind them elsewhere first`);
      }
      await this.repo.deleteSet(base, nowSeconds(this.deps), actorId(caller));
      return { status: 204 };
    });
  }

  /** API ids bound to `set` (for the message of a refused deletion; at most a few pages). */
  private async boundTo(set: string): Promise<string[]> {
    const out: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await this.repo.listBindings({ limit: 100, ...(cursor ? { cursor } : {}) });
      out.push(...page.items.filter((b) => b.set === set).map((b) => b.apiId));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    return out.slice(0, 20);
  }

  async listBindings(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'list');
    const q = parseQuery(pageQuery, req.query);
    const page = await this.repo.listBindings({ limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
    const items = page.items.map((b) => ({ apiId: b.apiId, set: b.set, version: String(b.version), updatedAt: b.updatedAt ?? null, updatedBy: b.updatedBy ?? null }));
    return { status: 200, headers: { etag: listingTag(items) }, body: { items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } };
  }

  async getBinding(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'read');
    const apiId = checkApiId(req.params.apiId);
    const b = await this.repo.readBinding(apiId);
    if (!b.exists || !b.set) throw new NotFound('binding-not-found', `API ${apiId} is bound to no set (it is decided with ${DEFAULT_SET})`);
    return { status: 200, headers: { etag: etag(String(b.version)) }, body: { apiId, set: b.set, version: String(b.version) } };
  }

  /** Binds an API to a set that exists (`{ set }`); the built-in sets may be bound too. */
  async putBinding(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const wanted = (req.body as { set?: unknown } | undefined)?.set;
    const target = `api:${String(req.params.apiId).slice(0, 64)} set:${String(wanted).slice(0, 64)}`;
    return audited(this.deps, { actor: caller, action: 'policy.binding.put', target }, async () => {
      await this.require(caller, 'update');
      const apiId = checkApiId(req.params.apiId);
      const body = parseBody(bindingBody, req.body);
      const set = checkSetName(body.set);
      if (body.apiId !== undefined && body.apiId !== apiId) throw new InvalidInput('invalid-field', `apiId: ${String(body.apiId).slice(0, 64)} is not the API of this URL`, { field: 'apiId' });
      if (set !== ADMIN_SET && !(await this.repo.readStamp(set)).exists) throw new Conflict('unknown-set', `policy set ${set} does not exist`);
      const pre = readPrecondition(req.headers);
      const base = await this.repo.readBinding(apiId);
      checkPrecondition(pre, { exists: base.exists, version: String(base.version) }, `the binding of API ${apiId}`);
      const version = await this.repo.putBinding(base, set, nowSeconds(this.deps), actorId(caller));
      return { status: base.exists ? 200 : 201, headers: { etag: etag(String(version)), ...(base.exists ? {} : { location: `/policies/apis/${apiId}` }) }, body: { apiId, set, version: String(version) } };
    });
  }

  async deleteBinding(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'policy.binding.delete', target: `api:${String(req.params.apiId).slice(0, 64)}` }, async () => {
      await this.require(caller, 'delete');
      const apiId = checkApiId(req.params.apiId);
      const pre = readPrecondition(req.headers);
      const base = await this.repo.readBinding(apiId);
      if (!base.exists) throw new NotFound('binding-not-found', `API ${apiId} is bound to no set`);
      checkPrecondition(pre, { exists: true, version: String(base.version) }, `the binding of API ${apiId}`);
      await this.repo.deleteBinding(base, nowSeconds(this.deps), actorId(caller));
      return { status: 204 };
    });
  }

  // Policy tests on every write, the test endpoint, history and rollback (DESIGN §9).

  /**
   * THE write path of a set's content: every write (PUT, PATCH, the default set's routes
   * and gate, rollback, a candidate's promotion) goes through here. It runs all the set's
   * tests, as they will be after the write, against the version being written, with the
   * real `decide()` and the role catalog as stored now, and refuses with 422
   * `policy-tests-failed` (nothing written) when any fails; a malformed test (an unknown
   * role, a bad scope) is the 400 `runPolicyTests` throws. Then it writes, conditioned on
   * `base`'s version, with the history entry in the same transaction.
   */
  private async writeChecked(base: StoredSet, change: SetChange, caller: Principal, note: HistoryNote): Promise<number> {
    const after: PolicyContent = {
      routes: change.routes ?? base.routes,
      gate: change.gate !== undefined ? change.gate : (base.gate ?? null),
      tests: change.tests !== undefined ? (change.tests ?? []) : base.tests,
    };
    const results = await this.runTests(base.name, String(base.version + 1), after);
    const failures = results.filter((r) => !r.passed);
    if (failures.length > 0) {
      const shown = failures.slice(0, 3).map((f) => JSON.stringify(f.name)).join(', ');
      throw new Unprocessable('policy-tests-failed', `${failures.length} of ${results.length} policy test(s) fail against the version being written: ${shown}${failures.length > 3 ? ', …' : ''}; nothing was written`, {
        passed: results.length - failures.length,
        failed: failures.length,
        failures: failures.map(({ name, expected, actual }) => ({ name, expected, actual })),
      });
    }
    return this.repo.writeSet(base, change, nowSeconds(this.deps), actorId(caller), note);
  }

  /** Runs `content.tests` against `content` with the role catalog as stored now (no read at all without tests). */
  private async runTests(set: string, version: string, content: PolicyContent): Promise<PolicyTestResult[]> {
    if (content.tests.length === 0) return [];
    const catalog = await this.repo.loadCatalog();
    const policy = compilePolicy({ set, version, routes: [...content.routes], ...(content.gate !== null ? { gate: content.gate } : {}), roles: catalog.roles, deletingOrgIds: catalog.deletingOrgIds });
    return runPolicyTests(policy, content.tests, this.deps.now());
  }

  /** `POST /policies/sets/{set}/test`: the stored version's tests, or a candidate's; never writes. */
  async testSet(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'read');
    const name = checkSetName(req.params.set);
    const body = req.body === undefined ? {} : parseBody(testBody, req.body);
    // The candidate is validated as a write would validate it, before anything is read.
    const routes = body.routes !== undefined ? validateRouteRules(body.routes, { validateCondition }) : undefined;
    if (typeof body.gate === 'string') validateExpression(body.gate);
    const tests = body.tests !== undefined ? validatePolicyTests(body.tests) : undefined;
    let stored: PolicyContent & { version: string };
    if (name === ADMIN_SET) stored = { routes: adminSetRoutes(), gate: null, tests: [], version: ADMIN_SET_VERSION };
    else {
      const s = await this.repo.readSet(name);
      if (!s.exists) throw new NotFound('set-not-found', `no policy set ${name}`);
      stored = { routes: s.routes, gate: s.gate ?? null, tests: s.tests, version: String(s.version) };
    }
    const content: PolicyContent = { routes: routes ?? stored.routes, gate: body.gate !== undefined ? body.gate : stored.gate, tests: tests ?? stored.tests };
    const results = await this.runTests(name, `${stored.version}.candidate`, content);
    const failed = results.filter((r) => !r.passed).length;
    return { status: 200, body: { version: stored.version, passed: results.length - failed, failed, results } };
  }

  /** The live version of a set whose history is asked for; 404 for a set that never existed (a deleted set's history stays readable). */
  private async historyOf(name: string): Promise<number | undefined> {
    const stamp = await this.repo.readStamp(name);
    if (!stamp.exists && stamp.stamp === 'none') throw new NotFound('set-not-found', `no policy set ${name}`);
    return stamp.exists ? stamp.version : undefined;
  }

  private versionView(v: VersionSummary, current: number | undefined) {
    return {
      version: String(v.version),
      action: v.action,
      updatedAt: v.updatedAt ?? null,
      updatedBy: v.updatedBy ?? null,
      current: v.version === current,
      restoredFrom: v.restoredFrom !== undefined ? String(v.restoredFrom) : null,
      summary: v.summary ?? null,
    };
  }

  async listVersions(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'read');
    const name = checkSetName(req.params.set);
    const q = parseQuery(pageQuery, req.query);
    // The admin set is built in: it is never written, so it has no history.
    if (name === ADMIN_SET) return { status: 200, headers: { etag: listingTag([]) }, body: { items: [] } };
    const current = await this.historyOf(name);
    const page = await this.repo.listVersions(name, { limit: q.limit ?? 50, ...(q.cursor ? { cursor: q.cursor } : {}) });
    const items = page.items.map((v) => this.versionView(v, current));
    return { status: 200, headers: { etag: listingTag(items) }, body: { items, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } };
  }

  async getVersion(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'read');
    const name = checkSetName(req.params.set);
    const version = this.versionParam(req.params.version);
    if (name === ADMIN_SET) throw new NotFound('version-not-found', 'the admin set is built in: it has no history');
    const current = await this.historyOf(name);
    const v = await this.repo.readVersion(name, version);
    if (!v) throw new NotFound('version-not-found', `the history of policy set ${name} does not hold version ${version} (it keeps the last ${HISTORY_KEEP})`);
    return { status: 200, body: { ...this.versionView(v, current), routes: v.routes, gate: v.gate ?? null, tests: v.tests } };
  }

  /**
   * `POST /policies/sets/{set}/rollback { version }`: that version's routes and gate,
   * written as a new version under `If-Match` with the current tests, which must pass.
   */
  async rollback(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    const wanted = (req.body as { version?: unknown } | undefined)?.version;
    const target = `policy-set:${String(req.params.set).slice(0, 64)} version:${String(wanted).slice(0, 20)}`;
    return audited(this.deps, { actor: caller, action: 'policy.set.rollback', target }, async () => {
      await this.require(caller, 'update');
      const name = this.writable(checkSetName(req.params.set));
      const body = parseBody(rollbackBody, req.body);
      const version = this.versionParam(body.version);
      const base = await this.base(req, name);
      const old = await this.repo.readVersion(name, version);
      if (!old) throw new NotFound('version-not-found', `the history of policy set ${name} does not hold version ${version} (it keeps the last ${HISTORY_KEEP})`);
      // Validated again: what is restored must pass today's checks, like any write.
      const routes = validateRouteRules(old.routes, { validateCondition });
      const gate = old.gate ?? null;
      if (gate !== null) validateExpression(gate);
      const next = await this.writeChecked(base, { routes, gate }, caller, { action: 'rollback', restoredFrom: version });
      return this.written(next, false, this.setView({ routes, ...(gate !== null ? { gate } : {}), tests: base.tests, version: String(next) }));
    });
  }

  private versionParam(raw: unknown): number {
    const v = parseVersion(raw);
    if (v === undefined) throw new InvalidInput('invalid-version', 'a version is a non-negative integer, as `GET /policies/sets/{set}/versions` lists them');
    return v;
  }

  // --- Shadow mode: a set's candidate version (DESIGN §9) ------------------------------

  private candidateView(c: StoredCandidate) {
    return { routes: c.routes, gate: c.gate ?? null, tests: c.tests, candidate: String(c.candidate), basedOn: String(c.basedOn), createdAt: c.createdAt, createdBy: c.createdBy, warnings: policyWarnings(c.routes, c.gate) };
  }

  /** A set's stamp and candidate (404 for a set that does not exist, and without a candidate unless `optional`). */
  private async candidateState(name: string, options: { optional?: boolean } = {}): Promise<CandidateState & { current?: number }> {
    // The admin set is built in: it never has a candidate.
    if (name === ADMIN_SET) throw new NotFound('candidate-not-found', 'the admin set is built in: it has no candidate');
    const state = await this.repo.readCandidate(name);
    if (!state.exists) throw new NotFound('set-not-found', `no policy set ${name}`);
    if (state.current === undefined && !options.optional) throw new NotFound('candidate-not-found', `policy set ${name} has no candidate`);
    return state;
  }

  /** The candidate as stored (404 when the stamp names one its item does not hold: it was just replaced or discarded). */
  private stored(state: CandidateState, name: string): StoredCandidate {
    if (!state.candidate) throw new NotFound('candidate-not-found', `policy set ${name} has no candidate`);
    return state.candidate;
  }

  async getCandidate(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'read');
    const name = checkSetName(req.params.set);
    const c = this.stored(await this.candidateState(name), name);
    return { status: 200, headers: { etag: etag(String(c.candidate)) }, body: this.candidateView(c) };
  }

  /** Stores a candidate (`{ routes, gate?, tests? }`, validated as a set write), compared against the live version. */
  async putCandidate(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'policy.candidate.put', target: `policy-set:${String(req.params.set).slice(0, 64)}/candidate` }, async () => {
      await this.require(caller, 'update');
      const name = this.writable(checkSetName(req.params.set));
      const body = parseBody(candidateBody, req.body);
      const routes = validateRouteRules(body.routes, { validateCondition });
      const gate = body.gate ?? null;
      if (gate !== null) validateExpression(gate);
      const tests = body.tests === undefined ? [] : validatePolicyTests(body.tests);
      const pre = readPrecondition(req.headers);
      const state = await this.candidateState(name, { optional: true });
      // The candidate is compared against a stored version: its stamp is what authorizers check.
      if (state.stamp !== 'live') throw new Conflict('set-not-stored', `policy set ${name} was never written: write it once (PUT /policies/sets/${name}) before running a candidate beside it`);
      checkPrecondition(pre, { exists: state.current !== undefined, version: String(state.current ?? 0) }, `the candidate of policy set ${name}`);
      const now = nowSeconds(this.deps);
      const n = await this.repo.putCandidate(state, { routes, gate, tests }, now, actorId(caller));
      if (state.current !== undefined) await this.dropReport(name, state.current);
      const view = this.candidateView({ candidate: n, basedOn: state.version, routes, ...(gate !== null ? { gate } : {}), tests, createdAt: now, createdBy: actorId(caller) });
      const created = state.current === undefined;
      return { status: created ? 201 : 200, headers: { etag: etag(String(n)), ...(created ? { location: `/policies/sets/${name}/candidate` } : {}) }, body: view };
    });
  }

  /** Discards the candidate and its report (`If-Match`: the candidate's ETag). */
  async deleteCandidate(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'policy.candidate.delete', target: `policy-set:${String(req.params.set).slice(0, 64)}/candidate` }, async () => {
      await this.require(caller, 'update');
      const name = this.writable(checkSetName(req.params.set));
      const pre = readPrecondition(req.headers);
      const state = await this.candidateState(name);
      checkPrecondition(pre, { exists: true, version: String(state.current) }, `the candidate of policy set ${name}`);
      await this.repo.deleteCandidate(name, state.current!);
      return { status: 204 };
    });
  }

  /** Totals, differences by kind and examples, summed over every container that flushed. */
  async candidateReport(req: ApiRequest): Promise<ApiResponse> {
    await this.require(req.caller.principal, 'read');
    const name = checkSetName(req.params.set);
    const state = await this.candidateState(name);
    const c = this.stored(state, name);
    const r = await this.repo.readShadowReport(name, c.candidate);
    const body = {
      set: name,
      candidate: String(c.candidate),
      basedOn: String(c.basedOn),
      liveVersion: String(state.version),
      stale: c.basedOn !== state.version,
      compared: r.compared,
      differing: r.differing,
      failed: r.failed,
      unkeyed: r.unkeyed,
      firstAt: r.firstAt ?? null,
      lastAt: r.lastAt ?? null,
      differences: r.differences,
      examples: r.examples,
      truncated: r.truncated,
    };
    return { status: 200, headers: { etag: etag(String(c.candidate)) }, body };
  }

  /**
   * Makes the candidate live: only while the live set is the version it was compared
   * against (`If-Match` names the live version, which must be its `basedOn`). It is written
   * through `putSet`, exactly as `PUT /policies/sets/{set}` writes a set (with `If-Match:
   * "<basedOn>"`), so every check of a set write applies; then the candidate goes.
   */
  async promoteCandidate(req: ApiRequest): Promise<ApiResponse> {
    const caller = req.caller.principal;
    return audited(this.deps, { actor: caller, action: 'policy.candidate.promote', target: `policy-set:${String(req.params.set).slice(0, 64)}/candidate` }, async () => {
      await this.require(caller, 'update');
      const name = this.writable(checkSetName(req.params.set));
      const pre = readPrecondition(req.headers);
      const state = await this.candidateState(name);
      const c = this.stored(state, name);
      checkPrecondition(pre, { exists: true, version: String(state.version) }, `policy set ${name}`);
      if (c.basedOn !== state.version) {
        throw new PreconditionFailed('version-mismatch', `policy set ${name} is at version ${state.version}, but its candidate was compared against version ${c.basedOn}: store the candidate again to compare it against the live set`);
      }
      const written = await this.putSet({
        ...req,
        params: { set: name },
        headers: { 'if-match': etag(String(c.basedOn)) },
        body: { routes: c.routes, gate: c.gate ?? null, tests: c.tests },
      }, 'promote');
      try {
        await this.repo.deleteCandidate(name, c.candidate);
      } catch (err) {
        // Replaced meanwhile: the new candidate stays (compared against a version that is now gone, it cannot be promoted).
        this.deps.logger.warn('shadow.candidate-kept', { policySet: name, candidate: c.candidate, reason: (err as { code?: string }).code ?? 'unknown' });
      }
      return { status: 200, ...(written.headers ? { headers: written.headers } : {}), body: written.body };
    });
  }

  /** Deletes a replaced candidate's report; its items expire anyway, so a failure is only logged. */
  private async dropReport(name: string, candidate: number): Promise<void> {
    try {
      await this.repo.deleteShadowReport(name, candidate);
    } catch (err) {
      this.deps.logger.warn('shadow.report-cleanup-failed', { policySet: name, candidate, reason: (err as { code?: string }).code ?? 'unknown' });
    }
  }
}

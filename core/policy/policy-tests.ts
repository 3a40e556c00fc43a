import { decide, type DecisionRequest } from '../authorizer/decide';
import type { CompiledPolicy } from '../authorizer/policy';
import { InvalidInput } from '../errors';
import { assignableRole } from '../rbac/assign';
import { isBuiltinRoleName } from '../rbac/builtin';
import type { RoleCatalog } from '../rbac/catalog';
import { parsePermission, parseScope } from '../rbac/permissions';
import type { Permission, Principal, Role, TokenKind } from '../rbac/types';
import type { PolicyTest } from './policy-set';

/**
 * Running a policy set's tests (DESIGN §9): each test's principal, described as data, is
 * turned into the Principal the authorizer would have resolved for such a caller, and its
 * request is decided with the one `decide()`. The CLI runs them offline against a file;
 * the admin API will run them on every write. Pure: the policy, the tests and the clock
 * are arguments.
 *
 * A test principal is one of:
 * - `{ "kind": "user", "id", "siteRoles"?, "orgs"?: { "<orgId>": ["<role>"…] }, "email"?,
 *   "emailVerified"?, "groups"?, "claims"? }`: a user signed in with a JWT;
 * - `{ "kind": "token", "tokenKind": "personal", "id", "ownerId", "siteRoles"?, "orgs"?,
 *   "scopes"? }`: a personal token, acting for its owner (whose roles these are);
 * - `{ "kind": "token", "tokenKind": "org", "id", "orgId", "scopes"? }` and
 *   `{ "kind": "token", "tokenKind": "site", "id", "scopes"? }`: service tokens;
 * - `{ "kind": "anonymous" }`: no credential at all.
 * `scopes` are `"resource:action"` strings; left out, the token holds all of its holder's
 * rights. Role names must be roles that can be held where they are named (built-in or
 * custom roles of the catalog): a misspelt role is an error, never a silent deny.
 */

/** The outcome a test expects, normalised. */
export interface ExpectedOutcome {
  decision: 'allow' | 'deny';
  code?: string;
}

/** One test's result. */
export interface PolicyTestResult {
  name: string;
  passed: boolean;
  expected: ExpectedOutcome;
  actual: { decision: 'allow' | 'deny'; code: string; route?: string };
}

const USER_FIELDS = ['kind', 'id', 'siteRoles', 'orgs', 'email', 'emailVerified', 'groups', 'claims'];
const TOKEN_FIELDS: Record<TokenKind, string[]> = {
  personal: ['kind', 'tokenKind', 'id', 'ownerId', 'siteRoles', 'orgs', 'scopes'],
  org: ['kind', 'tokenKind', 'id', 'orgId', 'scopes'],
  site: ['kind', 'tokenKind', 'id', 'scopes'],
};
const REQUEST_FIELDS = ['method', 'path', 'headers', 'query', 'sourceIp'];
/** User and owner ids as the admin API takes them (explain's `userId`). */
const USER_ID_RE = /^[A-Za-z0-9._:@|+-]{1,256}$/;
/** Org ids as literal route bindings take them. */
const ORG_ID_RE = /^[A-Za-z0-9._:@|+-]{1,128}$/;
const TOKEN_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

function plainObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function invalid(field: string, message: string): never {
  throw new InvalidInput('invalid-tests', `${field}: ${message}`, { field });
}

function onlyFields(v: Record<string, unknown>, allowed: string[], field: string): void {
  const extra = Object.keys(v).filter((k) => !allowed.includes(k));
  if (extra.length > 0) invalid(field, `unknown field(s) ${extra.join(', ')} (allowed: ${allowed.join(', ')})`);
}

function stringList(v: unknown, field: string, re?: RegExp): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || (re && !re.test(x)))) invalid(field, re ? `an array of strings matching ${re}` : 'an array of strings');
  return [...(v as string[])];
}

function idField(v: unknown, field: string, re: RegExp): string {
  if (typeof v !== 'string' || !re.test(v)) invalid(field, `a string matching ${re}`);
  return v as string;
}

function siteRoles(v: unknown, field: string, catalog: RoleCatalog): string[] {
  if (v === undefined) return [];
  const names = stringList(v, field);
  names.forEach((name, i) => {
    if (!assignableRole(catalog, { scope: 'site' }, name)) throw new InvalidInput('unknown-role', `${field}[${i}]: unknown site role ${JSON.stringify(name)}`, { field: `${field}[${i}]` });
  });
  return names;
}

function memberships(v: unknown, field: string, catalog: RoleCatalog): Record<string, string[]> {
  // Null prototype: org ids come from the file, and `__proto__` must stay a plain key.
  const orgs = Object.create(null) as Record<string, string[]>;
  if (v === undefined) return orgs;
  if (!plainObject(v)) invalid(field, 'an object of org id -> role names');
  for (const [orgId, roles] of Object.entries(v as Record<string, unknown>)) {
    idField(orgId, `${field} key`, ORG_ID_RE);
    const names = stringList(roles, `${field}.${orgId}`);
    names.forEach((name, i) => {
      if (!assignableRole(catalog, { scope: 'org', orgId }, name)) {
        throw new InvalidInput('unknown-role', `${field}.${orgId}[${i}]: unknown role ${JSON.stringify(name)} in org ${orgId}`, { field: `${field}.${orgId}[${i}]` });
      }
    });
    orgs[orgId] = names;
  }
  return orgs;
}

function scopes(v: unknown, field: string): Permission[] | undefined {
  if (v === undefined) return undefined;
  return stringList(v, field).map((s, i) => {
    try {
      return parseScope(s);
    } catch (err) {
      throw new InvalidInput('invalid-scope', `${field}[${i}]: ${(err as Error).message}`, { field: `${field}[${i}]` });
    }
  });
}

/**
 * The Principal a test describes (see the module comment), shaped exactly as
 * `PrincipalResolver` resolves a JWT or a gatehouse token; undefined for `anonymous`.
 * Throws InvalidInput (`invalid-tests`, `unknown-role`, `invalid-scope`) naming `field`.
 */
export function principalFromTest(raw: unknown, catalog: RoleCatalog, field = 'principal'): Principal | undefined {
  if (!plainObject(raw)) invalid(field, 'must be an object');
  const p = raw as Record<string, unknown>;
  switch (p.kind) {
    case 'anonymous':
      onlyFields(p, ['kind'], field);
      return undefined;
    case 'user': {
      onlyFields(p, USER_FIELDS, field);
      const principal: Principal = {
        id: idField(p.id, `${field}.id`, USER_ID_RE),
        kind: 'user',
        siteRoles: siteRoles(p.siteRoles, `${field}.siteRoles`, catalog),
        orgs: memberships(p.orgs, `${field}.orgs`, catalog),
        emailVerified: false,
      };
      if (p.email !== undefined) {
        if (typeof p.email !== 'string' || p.email.length > 320) invalid(`${field}.email`, 'a string');
        principal.email = p.email as string;
      }
      if (p.emailVerified !== undefined) {
        if (typeof p.emailVerified !== 'boolean') invalid(`${field}.emailVerified`, 'a boolean');
        principal.emailVerified = p.emailVerified as boolean;
      }
      if (p.groups !== undefined) principal.groups = stringList(p.groups, `${field}.groups`);
      if (p.claims !== undefined) {
        if (!plainObject(p.claims)) invalid(`${field}.claims`, 'an object');
        principal.claims = p.claims as Record<string, unknown>;
      }
      return principal;
    }
    case 'token': {
      const kind = p.tokenKind;
      if (kind !== 'personal' && kind !== 'org' && kind !== 'site') invalid(`${field}.tokenKind`, '"personal", "org" or "site"');
      const tokenKind = kind as TokenKind;
      onlyFields(p, TOKEN_FIELDS[tokenKind], field);
      const id = idField(p.id, `${field}.id`, TOKEN_ID_RE);
      const granted = scopes(p.scopes, `${field}.scopes`);
      const token = { id, kind: tokenKind, ...(granted ? { scopes: granted } : {}) };
      // As PrincipalResolver.tokenPrincipal: a personal token is its owner with the token's
      // scopes; org and site tokens are services holding their scopes at their own level.
      if (tokenKind === 'personal') {
        const ownerId = idField(p.ownerId, `${field}.ownerId`, USER_ID_RE);
        return { id: ownerId, kind: 'user', siteRoles: siteRoles(p.siteRoles, `${field}.siteRoles`, catalog), orgs: memberships(p.orgs, `${field}.orgs`, catalog), token: { ...token, ownerId } };
      }
      const orgs = Object.create(null) as Record<string, string[]>;
      if (tokenKind === 'org') {
        const orgId = idField(p.orgId, `${field}.orgId`, ORG_ID_RE);
        orgs[orgId] = [];
        return { id: `token:${id}`, kind: 'service', siteRoles: [], orgs, token: { ...token, orgId } };
      }
      return { id: `token:${id}`, kind: 'service', siteRoles: [], orgs, token };
    }
    default:
      return invalid(`${field}.kind`, '"user", "token" or "anonymous"');
  }
}

function stringMap(v: unknown, field: string, lowerKeys: boolean): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  if (v === undefined) return out;
  if (!plainObject(v)) invalid(field, 'an object of strings');
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'string') invalid(`${field}.${k}`, 'a string');
    out[lowerKeys ? k.toLowerCase() : k] = x as string;
  }
  return out;
}

/** The request a test describes, as the authorizer hands it to `decide()` (header names lower-cased). */
export function requestFromTest(raw: PolicyTest['request'], field = 'request'): DecisionRequest {
  onlyFields(raw, REQUEST_FIELDS, field);
  const request: DecisionRequest = { method: raw.method, path: raw.path, headers: stringMap(raw.headers, `${field}.headers`, true), query: stringMap(raw.query, `${field}.query`, false) };
  if (raw.sourceIp !== undefined) {
    if (typeof raw.sourceIp !== 'string') invalid(`${field}.sourceIp`, 'a string');
    request.sourceIp = raw.sourceIp as string;
  }
  return request;
}

/** A test's `expect`, normalised to `{ decision, code? }`. */
export function expectedOutcome(expect: PolicyTest['expect']): ExpectedOutcome {
  return typeof expect === 'string' ? { decision: expect } : { decision: expect.decision, ...(expect.code !== undefined ? { code: expect.code } : {}) };
}

/**
 * Runs tests (already shape-checked by `validatePolicyTests`) against a compiled policy,
 * whose role catalog names the roles principals may hold. Every principal and request is
 * converted before any test runs, so a malformed test (an unknown role, a bad scope) is an
 * InvalidInput naming `tests[i]…`, never a failed or passed test.
 */
export function runPolicyTests(policy: CompiledPolicy, tests: readonly PolicyTest[], nowMs: number): PolicyTestResult[] {
  const prepared = tests.map((t, i) => ({
    test: t,
    principal: principalFromTest(t.principal, policy.catalog, `tests[${i}].principal`),
    request: requestFromTest(t.request, `tests[${i}].request`),
  }));
  return prepared.map(({ test, principal, request }) => {
    const d = decide(policy, principal, request, nowMs);
    const expected = expectedOutcome(test.expect);
    const actual = { decision: d.allowed ? ('allow' as const) : ('deny' as const), code: d.code, ...(d.route !== undefined ? { route: d.route } : {}) };
    const passed = actual.decision === expected.decision && (expected.code === undefined || expected.code === actual.code);
    return { name: test.name, passed, expected, actual };
  });
}

const ROLE_NAME_RE = /^[a-z][a-z0-9-]{1,62}$/;
const ROLE_FIELDS = ['name', 'displayName', 'orgId', 'site', 'org', 'member', 'user'];
const LEVELS = ['site', 'org', 'member', 'user'] as const;

/**
 * Custom roles for tests run outside the store (a policy file's `roles`): the shape of
 * `Role`, validated as the admin API validates a role definition. An org role (`orgId`)
 * holds no site or user permissions, as with `PUT /orgs/{orgId}/roles/{name}`.
 */
export function validateTestRoles(raw: unknown, field = 'roles'): Role[] {
  if (!Array.isArray(raw)) invalid(field, 'an array of roles');
  const seen = new Set<string>();
  return (raw as unknown[]).map((r, i) => {
    const where = `${field}[${i}]`;
    if (!plainObject(r)) invalid(where, 'must be an object');
    onlyFields(r, ROLE_FIELDS, where);
    if (typeof r.name !== 'string' || !ROLE_NAME_RE.test(r.name)) throw new InvalidInput('invalid-role-name', `${where}.name: lower-case letters, digits and dashes, 2..63 characters`, { field: `${where}.name` });
    if (isBuiltinRoleName(r.name)) throw new InvalidInput('invalid-role-name', `${where}.name: ${r.name} is a built-in role`, { field: `${where}.name` });
    if (r.orgId !== undefined) idField(r.orgId, `${where}.orgId`, ORG_ID_RE);
    const key = `${(r.orgId as string | undefined) ?? ''}/${r.name}`;
    if (seen.has(key)) invalid(`${where}.name`, `role ${r.name} defined twice${r.orgId ? ` in org ${String(r.orgId)}` : ''}`);
    seen.add(key);
    if (r.displayName !== undefined && typeof r.displayName !== 'string') invalid(`${where}.displayName`, 'a string');
    const role: Role = { name: r.name, site: [], org: [], member: [], user: [] };
    if (typeof r.displayName === 'string') role.displayName = r.displayName;
    if (typeof r.orgId === 'string') role.orgId = r.orgId;
    for (const level of LEVELS) {
      const perms = r[level];
      if (perms === undefined) continue;
      if (role.orgId !== undefined && (level === 'site' || level === 'user')) invalid(`${where}.${level}`, 'an org role holds org and member permissions only');
      if (!Array.isArray(perms) || perms.length > 100) invalid(`${where}.${level}`, 'an array of at most 100 permissions');
      role[level] = (perms as unknown[]).map((p, j) => parsePermission(p, `${where}.${level}[${j}]`));
    }
    return role;
  });
}

/**
 * The pure policy-test runner (core/policy/policy-tests.ts): a described principal is the
 * Principal the authorizer resolves for such a caller (checked against the real
 * PrincipalResolver over DynamoDB Local), misspelt roles and scopes are errors, and org
 * ids from a document stay plain keys.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../core/authorizer/policy';
import { InvalidInput } from '../../core/errors';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import { loadExpressionEngine } from '../../core/policy/expression';
import type { PolicyTest } from '../../core/policy/policy-set';
import { principalFromTest, requestFromTest, runPolicyTests } from '../../core/policy/policy-tests';
import { RoleCatalog } from '../../core/rbac/catalog';
import type { TokenRecord } from '../../core/store/types';
import { adminWorld } from '../functions/admin-support';
import { tokenContext } from '../support/events';

// These tests validate and compile expressions directly: jexl is loaded on first need (core/policy/expression.ts).
await loadExpressionEngine();

const CREW = { name: 'crew', orgId: 'acme', site: [], org: [{ resource: 'project', action: 'read' }], member: [], user: [] };
const catalog = new RoleCatalog([CREW]);

function thrown(fn: () => unknown): InvalidInput {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidInput) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('principalFromTest: the Principal PrincipalResolver resolves', { timeout: 60_000 }, () => {
  it('a user signed in with a JWT, personal, org and site tokens', async () => {
    const w = await adminWorld();
    const now = w.rt.clock.seconds;
    await w.rt.store.policy.putRole(CREW, now);
    await w.rt.store.users.putSiteRoles('pat', ['site-viewer'], now);
    await w.rt.store.users.putMembership('acme', 'pat', ['org-member', 'crew'], now);
    await w.rt.store.users.putMembership('globex', 'pat', ['org-viewer'], now);
    const roles = new RoleCatalog(await w.rt.store.policy.loadRoles());

    const jwt = await w.idp.sign('pat', now, { email: 'pat@example.com', email_verified: true, groups: ['ops', 'eng'], tier: 'gold' });
    const signedIn = (await w.rt.callers.resolve(jwt)).principal;
    const described = principalFromTest(
      { kind: 'user', id: 'pat', siteRoles: ['site-viewer'], orgs: { acme: ['org-member', 'crew'], globex: ['org-viewer'] }, email: 'pat@example.com', emailVerified: true, groups: ['ops', 'eng'], claims: signedIn.claims },
      roles,
    );
    expect(described).toEqual(signedIn);

    const token = async (fields: Partial<TokenRecord> & Pick<TokenRecord, 'kind'>) => {
      const t = generateToken();
      await w.rt.store.tokens.createToken({ id: t.id, name: 'm', secretHash: hashSecret(t.secret), createdAt: now, expiresAt: now + 86400, ...fields });
      return t.id;
    };
    const personal = await token({ kind: 'personal', ownerId: 'pat', scopes: ['project:read', 'org:*'] });
    expect(principalFromTest({ kind: 'token', tokenKind: 'personal', id: personal, ownerId: 'pat', siteRoles: ['site-viewer'], orgs: { acme: ['org-member', 'crew'], globex: ['org-viewer'] }, scopes: ['project:read', 'org:*'] }, roles))
      .toEqual((await w.rt.callers.fromContext(tokenContext(personal, 'pat', 'pat'))).principal);
    const unscoped = await token({ kind: 'personal', ownerId: 'pat' });
    expect(principalFromTest({ kind: 'token', tokenKind: 'personal', id: unscoped, ownerId: 'pat', siteRoles: ['site-viewer'], orgs: { acme: ['org-member', 'crew'], globex: ['org-viewer'] } }, roles))
      .toEqual((await w.rt.callers.fromContext(tokenContext(unscoped, 'pat', 'pat'))).principal);
    const org = await token({ kind: 'org', orgId: 'acme', scopes: ['project:read'] });
    expect(principalFromTest({ kind: 'token', tokenKind: 'org', id: org, orgId: 'acme', scopes: ['project:read'] }, roles)).toEqual((await w.rt.callers.fromContext(tokenContext(org, `token:${org}`))).principal);
    const site = await token({ kind: 'site' });
    expect(principalFromTest({ kind: 'token', tokenKind: 'site', id: site }, roles)).toEqual((await w.rt.callers.fromContext(tokenContext(site, `token:${site}`))).principal);
    expect(principalFromTest({ kind: 'anonymous' }, roles)).toBeUndefined();
  });
});

describe('principalFromTest: what it refuses', () => {
  it('a role that does not exist where it is named is unknown-role, naming the field', () => {
    for (const [principal, field] of [
      [{ kind: 'user', id: 'u', siteRoles: ['site-wizard'] }, 'p.siteRoles[0]'],
      [{ kind: 'user', id: 'u', siteRoles: ['org-admin'] }, 'p.siteRoles[0]'], // an org role is no site role
      [{ kind: 'user', id: 'u', orgs: { acme: ['org-admin', 'nope'] } }, 'p.orgs.acme[1]'],
      [{ kind: 'user', id: 'u', orgs: { globex: ['crew'] } }, 'p.orgs.globex[0]'], // acme's custom role
      [{ kind: 'token', tokenKind: 'personal', id: 't', ownerId: 'u', orgs: { acme: ['site-admin'] } }, 'p.orgs.acme[0]'],
    ] as const) {
      const err = thrown(() => principalFromTest(principal, catalog, 'p'));
      expect(err.code, JSON.stringify(principal)).toBe('unknown-role');
      expect(err.details).toEqual({ field });
    }
    expect(principalFromTest({ kind: 'user', id: 'u', orgs: { acme: ['crew'] } }, catalog)?.orgs.acme).toEqual(['crew']);
  });

  it('bad scopes, unknown fields and kinds are refused with stable codes', () => {
    for (const [principal, code] of [
      [{ kind: 'token', tokenKind: 'site', id: 't', scopes: ['Policy:Read'] }, 'invalid-scope'],
      [{ kind: 'token', tokenKind: 'site', id: 't', scopes: ['policy'] }, 'invalid-scope'],
      [{ kind: 'token', tokenKind: 'site', id: 't', orgId: 'acme' }, 'invalid-tests'],
      [{ kind: 'token', tokenKind: 'bot', id: 't' }, 'invalid-tests'],
      [{ kind: 'robot', id: 'u' }, 'invalid-tests'],
      [{ kind: 'user', id: 'u', admin: true }, 'invalid-tests'],
      [{ kind: 'user', id: 'a b' }, 'invalid-tests'],
      [{ kind: 'anonymous', id: 'x' }, 'invalid-tests'],
      [['user'], 'invalid-tests'],
    ] as const) {
      expect(thrown(() => principalFromTest(principal, catalog)).code, JSON.stringify(principal)).toBe(code);
    }
  });

  it('org ids from a document stay plain keys: `__proto__` is an org like any other, and no inherited name is a membership', () => {
    const parsed = JSON.parse('{"kind":"user","id":"u","orgs":{"__proto__":["org-admin"]}}') as Record<string, unknown>;
    const p = principalFromTest(parsed, catalog)!;
    expect(Object.getPrototypeOf(p.orgs)).toBeNull();
    expect(Object.keys(p.orgs)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(p.orgs, '__proto__')?.value).toEqual(['org-admin']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Decided as a membership of the org `__proto__` only; `constructor` is no membership.
    const policy = compilePolicy({ set: 't', version: '1', routes: [{ route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}' }], roles: [] });
    const test = (path: string, principal: unknown): PolicyTest => ({ name: path, principal: principal as PolicyTest['principal'], request: { method: 'GET', path }, expect: 'deny' });
    const results = runPolicyTests(policy, [test('/orgs/acme/projects', parsed), test('/orgs/constructor/projects', parsed), test('/orgs/constructor/projects', { kind: 'user', id: 'u' })], 0);
    expect(results.map((r) => r.actual.code)).toEqual(['not-member', 'not-member', 'not-member']);
    const own = runPolicyTests(policy, [test('/orgs/__proto__/projects', parsed)], 0)[0]!;
    expect(own.actual).toEqual({ decision: 'allow', code: 'allow', route: 'GET /orgs/{orgId}/projects' });
  });
});

describe('runPolicyTests', () => {
  const policy = compilePolicy({
    set: 'shop',
    version: '3',
    routes: [
      { route: 'GET /orgs/{orgId}/projects/{id}', resource: 'project', action: 'read', org: '{orgId}' },
      { route: 'POST /orgs/{orgId}/deploy', resource: 'deployment', action: 'create', org: '{orgId}', condition: 'request.headers["x-approved"] == "yes"' },
      { route: 'GET /health', resource: 'health', action: 'read', public: true },
    ],
    gate: 'request.sourceIp != "198.51.100.1"',
    roles: [CREW],
  });
  const admin = { kind: 'user', id: 'ada', orgs: { acme: ['org-admin'] } };

  it('decides each test with decide(): decision, reason code and route; expectations with and without a code', () => {
    const tests: PolicyTest[] = [
      { name: 'crew reads', principal: { kind: 'user', id: 'c', orgs: { acme: ['crew'] } }, request: { method: 'GET', path: '/orgs/acme/projects/p' }, expect: { decision: 'allow', code: 'allow' } },
      { name: 'unapproved deploy', principal: admin, request: { method: 'POST', path: '/orgs/acme/deploy', headers: { 'X-Approved': 'no' } }, expect: { decision: 'deny', code: 'condition-false' } },
      { name: 'approved deploy (header names are case-insensitive)', principal: admin, request: { method: 'POST', path: '/orgs/acme/deploy', headers: { 'X-Approved': 'yes' } }, expect: 'allow' },
      { name: 'blocked address', principal: admin, request: { method: 'GET', path: '/orgs/acme/projects/p', sourceIp: '198.51.100.1' }, expect: { decision: 'deny', code: 'gate-denied' } },
      { name: 'wrong code fails', principal: { kind: 'anonymous' }, request: { method: 'GET', path: '/health' }, expect: { decision: 'allow', code: 'allow' } },
      { name: 'no route', principal: admin, request: { method: 'DELETE', path: '/health' }, expect: 'allow' },
    ];
    const results = runPolicyTests(policy, tests, 0);
    expect(results.map((r) => [r.name, r.passed])).toEqual(tests.map((t, i) => [t.name, i < 4]));
    expect(results[4]).toEqual({ name: 'wrong code fails', passed: false, expected: { decision: 'allow', code: 'allow' }, actual: { decision: 'allow', code: 'public', route: 'GET /health' } });
    expect(results[5]!.actual).toEqual({ decision: 'deny', code: 'no-route' });
  });

  it('a malformed test anywhere is an error before any test runs, naming it', () => {
    const tests: PolicyTest[] = [
      { name: 'fine', principal: admin, request: { method: 'GET', path: '/health' }, expect: 'allow' },
      { name: 'misspelt', principal: { kind: 'user', id: 'u', orgs: { acme: ['org-admn'] } }, request: { method: 'GET', path: '/health' }, expect: 'allow' },
    ];
    const err = thrown(() => runPolicyTests(policy, tests, 0));
    expect(err.code).toBe('unknown-role');
    expect(err.details).toEqual({ field: 'tests[1].principal.orgs.acme[0]' });
    expect(thrown(() => requestFromTest({ method: 'GET', path: '/x', body: 'x' } as never)).code).toBe('invalid-tests');
    expect(thrown(() => requestFromTest({ method: 'GET', path: '/x', headers: { a: 1 } } as never)).code).toBe('invalid-tests');
  });
});

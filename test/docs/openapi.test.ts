/**
 * docs/openapi.json and the endpoint reference of docs/admin-api.md are generated from
 * the route list and the services' route specs: regenerated here, they must equal what
 * is committed; the document must pass an OpenAPI 3.1 validator; and every route in the
 * code is in the document and the reverse.
 */
import { validate } from '@readme/openapi-parser';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ORG_ROUTE_SPECS, OrgAdmin } from '../../core/admin/orgs';
import { POLICY_ROUTE_SPECS, PolicyAdmin } from '../../core/admin/policies';
import { INVITATION_ROUTE_SPECS, InvitationService } from '../../core/invitations/service';
import { TOKEN_ROUTE_SPECS, TokenService } from '../../core/tokens/service';
import { ADMIN_ROUTES } from '../../functions/routes';
import { ADMIN_API_DOC, allErrors, buildOpenApi, endpointReference, OPENAPI_FILE, renderOpenApi, ROUTE_SPECS, withReference } from '../../scripts/openapi';

const ROOT = resolve(import.meta.dirname, '../..');
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

function documentedRoutes(doc: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`));
}

describe('docs/openapi.json', () => {
  it('is what `npm run openapi` generates from the code (run it after changing a route or a schema)', () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(renderOpenApi());
  });

  it('is a valid OpenAPI 3.1 document (@readme/openapi-parser: schema and spec rules)', async () => {
    const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
    expect(doc.openapi).toBe('3.1.0');
    const result = await validate(doc, { validate: { errors: { colorize: false } } });
    expect(result.valid ? [] : result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
  });

  it('holds every route of the code, and nothing else', () => {
    const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
    expect(documentedRoutes(doc).sort()).toEqual(Object.keys(ADMIN_ROUTES).sort());
    // ...and so does a document built from the code right now.
    expect(documentedRoutes(buildOpenApi() as never).sort()).toEqual(Object.keys(ADMIN_ROUTES).sort());
  });

  it('every route spec belongs to a route its service serves (no spec outlives its endpoint)', () => {
    const deps = {} as never;
    const pairs: [Record<string, unknown>, string[]][] = [
      [TOKEN_ROUTE_SPECS, Object.keys(new TokenService(deps).routes())],
      [INVITATION_ROUTE_SPECS, Object.keys(new InvitationService({ store: { db: {} } } as never).routes())],
      [ORG_ROUTE_SPECS, Object.keys(new OrgAdmin(deps).routes())],
      [POLICY_ROUTE_SPECS, Object.keys(new PolicyAdmin(deps).routes())],
    ];
    for (const [specs, served] of pairs) for (const route of Object.keys(specs)) expect(served, route).toContain(route);
    for (const route of Object.keys(ROUTE_SPECS)) expect(Object.keys(ADMIN_ROUTES)).toContain(route);
  });

  it('names every error code each service throws (a new code must be documented)', () => {
    const files: [string, string[]][] = [
      ['core/tokens/service.ts', Object.keys(TOKEN_ROUTE_SPECS)],
      ['core/tokens/idempotency.ts', Object.keys(TOKEN_ROUTE_SPECS)],
      ['core/invitations/service.ts', Object.keys(INVITATION_ROUTE_SPECS)],
      ['core/admin/orgs.ts', Object.keys(ORG_ROUTE_SPECS)],
      ['core/admin/policies.ts', Object.keys(POLICY_ROUTE_SPECS)],
      ['core/rbac/assign.ts', [...Object.keys(ORG_ROUTE_SPECS), ...Object.keys(INVITATION_ROUTE_SPECS)]],
      ['core/rbac/permissions.ts', [...Object.keys(TOKEN_ROUTE_SPECS), ...Object.keys(POLICY_ROUTE_SPECS)]],
      ['core/policy/routes.ts', ['PUT /policies/routes']],
      ['core/admin/policy-sets.ts', Object.keys(POLICY_ROUTE_SPECS)],
      ['core/policy/policy-set.ts', Object.keys(POLICY_ROUTE_SPECS)],
      ['core/http/preconditions.ts', Object.keys(POLICY_ROUTE_SPECS)],
      ['core/store/dynamo/policy.ts', Object.keys(POLICY_ROUTE_SPECS)],
    ];
    for (const [file, routes] of files) {
      const source = readFileSync(resolve(ROOT, file), 'utf8');
      const thrown = new Set([...source.matchAll(/new (?:InvalidInput|Forbidden|NotFound|Conflict|Gone|PreconditionFailed|PreconditionRequired|GatehouseError)\(\s*'([a-z-]+)'/g)].map((m) => m[1]!));
      // Codes that are never an answer: internal failures (500) are answered as `internal-error`.
      thrown.delete('internal-error');
      thrown.delete('idempotency-race');
      const documented = new Set(routes.flatMap((r) => allErrors(ROUTE_SPECS[r]!).map((e) => e.code)));
      expect([...thrown].filter((c) => !documented.has(c)), file).toEqual([]);
    }
  });
});

describe('docs/admin-api.md', () => {
  it('carries the endpoint reference `npm run openapi` generates', () => {
    const doc = readFileSync(ADMIN_API_DOC, 'utf8');
    expect(doc).toBe(withReference(doc, endpointReference()));
    for (const route of Object.keys(ADMIN_ROUTES)) expect(doc).toContain(`### ${route}\n`);
  });
});

import type { RouteRule } from '../../core/policy/routes';
import { userContext, httpEvent, type AuthorizerContext } from '../support/events';
import type { adminWorld } from './admin-support';

export type W = Awaited<ReturnType<typeof adminWorld>>;

export const root = userContext('root');

/** A call to the admin function with preconditions and a caller (root unless given). */
export function api(w: W) {
  return (method: string, path: string, o: { body?: unknown; ifMatch?: string; ifNoneMatch?: string; ctx?: AuthorizerContext; query?: Record<string, string> } = {}) =>
    w.call(
      httpEvent(method, path, {
        ...(o.body !== undefined ? { body: o.body } : {}),
        ...(o.query ? { query: o.query } : {}),
        context: o.ctx ?? root,
        headers: { ...(o.ifMatch !== undefined ? { 'if-match': o.ifMatch } : {}), ...(o.ifNoneMatch !== undefined ? { 'if-none-match': o.ifNoneMatch } : {}) },
      }),
    );
}

export const PROJECT: RouteRule = { route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'read', org: '{orgId}' };
export const DEPLOY: RouteRule = { route: 'POST /orgs/{orgId}/deploy', resource: 'deployment', action: 'create', org: '{orgId}' };
export const HEALTH: RouteRule = { route: 'GET /health', resource: 'health', action: 'read', public: true };

/** Tests of a shop: acme's viewers read projects, outsiders do not, health is public, viewers do not deploy. */
export const SHOP_TESTS = [
  { name: 'viewer reads a project', principal: { kind: 'user', id: 'vic', orgs: { acme: ['org-viewer'] } }, request: { method: 'GET', path: '/orgs/acme/projects/p1' }, expect: 'allow' },
  { name: 'outsider is refused', principal: { kind: 'user', id: 'eve', orgs: { globex: ['org-admin'] } }, request: { method: 'GET', path: '/orgs/acme/projects/p1' }, expect: 'deny' },
  { name: 'health is public', principal: { kind: 'anonymous' }, request: { method: 'GET', path: '/health' }, expect: { decision: 'allow', code: 'public' } },
  { name: 'viewer cannot deploy', principal: { kind: 'user', id: 'vic', orgs: { acme: ['org-viewer'] } }, request: { method: 'POST', path: '/orgs/acme/deploy' }, expect: 'deny' },
];

/** Every item but audit records, for "nothing was written". */
export async function stored(w: W) {
  return (await w.items()).filter((i) => i.type !== 'audit').sort((a, b) => `${a.pk}|${a.sk}`.localeCompare(`${b.pk}|${b.sk}`));
}

import { AsyncLocalStorage } from 'node:async_hooks';
import { PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { buildHandlers } from '../../functions/apps';
import type { HttpApiEvent } from '../../core/http/api';
import { generateToken, hashSecret } from '../../core/identity/token-format';
import { toItem } from '../../core/store/dynamo/db';
import { tokenItem } from '../../core/store/dynamo/tokens';
import { membershipItem } from '../../core/store/dynamo/users';
import { httpEvent, tokenContext, userContext, type AuthorizerContext } from '../support/events';
import { iamAllows } from '../support/iam';
import { testRuntime } from '../support/runtime';

/**
 * DESIGN §4: a deleted organization grants nothing from the moment the delete answers:
 * no membership, token, invitation or role left behind by a concurrent write or an
 * interrupted cascade ever allows, and a new organization with the same id starts empty.
 *
 * The races are forced, not hoped for: a DynamoDB client middleware sees every request,
 * and AsyncLocalStorage tells the DELETE's own requests from everyone else's. The DELETE
 * is paused after its k-th write (or after its checks, before its first write) while the
 * racers run to completion, or its k-th write fails (an interrupted cascade), for k
 * spread over the whole cascade (measured on an uninterrupted run). DynamoDB Local's
 * indexes are never behind; a third hook hides recent writes from the DELETE's index
 * queries, as a lagging GSI on AWS does. Data written before org partitions indexed
 * their children is covered too.
 */

const API = 'arn:aws:execute-api:us-east-1:123456789012:api123/prod';
const WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'TransactWriteItemsCommand', 'BatchWriteItemCommand']);
const ROUTES = [
  { route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'read', org: '{orgId}' },
  { route: 'POST /orgs/{orgId}/projects', resource: 'project', action: 'create', org: '{orgId}' },
];
const ORG = 'doomed';

type Handler = (e: HttpApiEvent) => Promise<{ statusCode: number; body: string }>;
type Res = { status: number; body: any };

/** What the DELETE's requests are, as the hook sees them. */
interface Hook {
  /** Runs `racers` after the DELETE's `pauseAt`-th write succeeded, outside the DELETE's context. */
  pauseAt?: number;
  /** Runs `racers` just before the DELETE's `pauseBefore`-th write (1: after all its checks, before its first write). */
  pauseBefore?: number;
  racers?: () => Promise<void>;
  /** The DELETE's `failAt`-th write fails as DynamoDB would when it is down. */
  failAt?: number;
  /** Items whose writes the index has not caught up with: hidden from the DELETE's index queries. */
  lagging?: boolean;
}

async function world(size: { members: number; tokens: number }) {
  const rt = await testRuntime({ ttl: false });
  const h = buildHandlers(rt);
  const call = async (api: Handler, method: string, path: string, context: AuthorizerContext, body?: unknown): Promise<Res> => {
    // Policy writes are conditional (If-Match); these tests overwrite on purpose.
    const res = await api(httpEvent(method, path, { context, ...(body !== undefined ? { body } : {}), ...(path.startsWith('/policies/') ? { headers: { 'if-match': '*' } } : {}) }));
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
  };
  const root = userContext('root');
  await rt.store.users.putSiteRoles('root', ['site-admin'], rt.clock.seconds);

  // The hook: counts the DELETE's writes, pauses or fails one, hides lagging items from its index queries.
  const deleting = new AsyncLocalStorage<true>();
  const hook: Hook & { writes: number; recent: Set<string> } = { writes: 0, recent: new Set() };
  const keyOf = (i: Record<string, { S?: string }> | undefined) => (i ? `${i.pk?.S}|${i.sk?.S}` : undefined);
  rt.store.db.client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, any>;
      const name = String(context.commandName);
      if (!deleting.getStore()) {
        if (hook.lagging && WRITES.has(name)) {
          for (const k of [keyOf(input.Item), keyOf(input.Key), ...(input.TransactItems ?? []).map((t: any) => keyOf(t.Put?.Item ?? t.Update?.Key ?? t.Delete?.Key))]) if (k) hook.recent.add(k);
        }
        return next(args);
      }
      if (name === 'QueryCommand' && input.IndexName && hook.lagging) {
        const out = await next(args);
        const o = out.output as { Items?: Record<string, { S?: string }>[]; Count?: number };
        o.Items = (o.Items ?? []).filter((i) => !hook.recent.has(keyOf(i)!));
        o.Count = o.Items.length;
        return out;
      }
      if (!WRITES.has(name)) return next(args);
      const n = ++hook.writes;
      if (n === hook.pauseBefore && hook.racers) await deleting.exit(hook.racers);
      if (n === hook.failAt) throw Object.assign(new Error('injected: DynamoDB is unavailable'), { name: 'InternalServerError', $fault: 'server' });
      const out = await next(args);
      if (n === hook.pauseAt && hook.racers) await deleting.exit(hook.racers);
      return out;
    },
    { step: 'initialize', name: 'org-deletion-hook' },
  );

  expect((await call(h.admin, 'PUT', '/policies/routes', root, { routes: ROUTES })).status).toBe(200);
  for (const id of [ORG, 'kept']) expect((await call(h.admin, 'POST', '/orgs', root, { id, name: id })).status).toBe(201);
  expect((await call(h.admin, 'PUT', `/orgs/${ORG}/roles/crew`, root, { org: [{ resource: 'project', action: 'read' }] })).status).toBe(201);
  const users = new Set<string>();
  const tokens = new Map<string, string>(); // id -> credential
  const roles = ['org-admin', 'org-viewer', 'crew'];
  for (let i = 0; i < size.members; i++) {
    expect((await call(h.admin, 'PUT', `/orgs/${ORG}/members/m${i}`, root, { roles: [roles[i % 3]] })).status).toBe(201);
    users.add(`m${i}`);
  }
  const orgToken = async (ctx: AuthorizerContext, name: string, scopes?: string[]) => {
    const res = await call(h.tokens, 'POST', `/orgs/${ORG}/tokens`, ctx, { name, ...(scopes ? { scopes } : {}) });
    if (res.status === 201) tokens.set(res.body.id, res.body.token);
    return res;
  };
  for (let i = 0; i < size.tokens; i++) expect((await orgToken(root, `t${i}`, ['project:read'])).status).toBe(201);
  // An org token with every right in the org (`*:*`), writing during the DELETE.
  const svc = (await orgToken(root, 'svc')).body as { id: string; token: string };
  const invite = await call(h.invitations, 'POST', `/orgs/${ORG}/invitations`, root, { email: 'invitee@x.test', role: 'org-viewer' });
  expect(invite.status).toBe(201);
  // Another org and its member are never touched.
  expect((await call(h.admin, 'PUT', '/orgs/kept/members/k0', root, { roles: ['org-viewer'] })).status).toBe(201);

  /** The REST authorizer's answer for a token on an org route: `Allow` also when the answer (cached by API Gateway) allows another route of the org. */
  const rest = (credential: string) =>
    h.rest({ type: 'TOKEN', authorizationToken: `Bearer ${credential}`, methodArn: `${API}/GET/orgs/${ORG}/projects/p1` }).then(
      (r) => (r.policyDocument.Statement[0]!.Effect === 'Allow' || iamAllows(r, `${API}/POST/orgs/${ORG}/projects`) || String(r.context?.orgIds ?? '').split(',').includes(ORG) ? 'Allow' : 'Deny'),
      (err: Error) => err.message,
    );
  const explain = async (userId: string, orgId = ORG) => (await call(h.admin, 'POST', '/authz/explain', root, { userId, method: 'GET', path: `/orgs/${orgId}/projects/p1` })).body as { allowed: boolean; code: string };

  /** Concurrent writes that create access in the org, through the real handlers, by admins and by the org's own `*:*` token. */
  const racers = (count: { members: number; tokens: number }) => async () => {
    const svcCtx = tokenContext(svc.id, `token:${svc.id}`);
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < count.members; i++) {
      users.add(`r${i}`);
      jobs.push(call(h.admin, 'PUT', `/orgs/${ORG}/members/r${i}`, i % 2 ? root : userContext('m0'), { roles: [roles[i % 3]] }));
    }
    for (let i = 0; i < count.tokens; i++) jobs.push(orgToken(root, `race${i}`, ['project:read']));
    users.add('svc-made');
    jobs.push(call(h.admin, 'PUT', `/orgs/${ORG}/members/svc-made`, svcCtx, { roles: ['org-admin'] }));
    jobs.push(orgToken(svcCtx, 'svc-child'));
    jobs.push(call(h.admin, 'PUT', `/orgs/${ORG}/roles/late`, svcCtx, { org: [{ resource: 'project', action: 'read' }] }));
    jobs.push(call(h.invitations, 'POST', `/orgs/${ORG}/invitations`, svcCtx, { email: 'late@x.test', role: 'org-admin' }));
    users.add('invitee');
    jobs.push(call(h.invitations, 'POST', `/invitations/${invite.body.id}/accept`, userContext('invitee', 'invitee@x.test')));
    const results = await Promise.all(jobs);
    // Racers fail cleanly (404/409 or a 503 a client retries), never a 500.
    for (const r of results) expect((r as Res).status).not.toBe(500);
  };

  const deleteOrg = (h2: Hook = {}) => {
    Object.assign(hook, { writes: 0, pauseAt: undefined, pauseBefore: undefined, racers: undefined, failAt: undefined }, h2);
    return deleting.run(true, () => call(h.admin, 'DELETE', `/orgs/${ORG}`, root));
  };

  /** Everything that still grants in the org: users by explain (fresh), tokens at the REST authorizer. */
  const grants = async () => {
    const byUser = await Promise.all([...users].map(async (u) => ((await explain(u)).allowed ? [`user ${u}`] : [])));
    const byToken = await Promise.all([...tokens].map(async ([id, credential]) => ((await rest(credential)) === 'Allow' ? [`token ${id}`] : [])));
    return [...byUser.flat(), ...byToken.flat()];
  };

  /** What a leftover org admin can still do in the org through the admin API (at once, no cache). */
  const adminLeftovers = async () => {
    const out: string[] = [];
    // A sample of the admins: those made before the DELETE, by the racers, and by the org's token.
    const admins = [...users].filter((u) => u === 'svc-made' || (/^[mr]\d+$/.test(u) && Number(u.slice(1)) % 3 === 0)).filter((u, i, all) => i < 4 || i === all.length - 1 || u === 'svc-made');
    for (const u of admins) {
      const ctx = userContext(u);
      for (const [m, p, body] of [['GET', `/orgs/${ORG}`], ['GET', `/orgs/${ORG}/members`], ['PUT', `/orgs/${ORG}/members/newcomer`, { roles: ['org-admin'] }], ['GET', `/orgs/${ORG}/roles`]] as const) {
        const r = await call(h.admin, m, p, ctx, body);
        if (r.status < 400) out.push(`${u}: ${m} ${p} ${r.status}`);
      }
      for (const [m, p, body] of [['GET', `/orgs/${ORG}/tokens`], ['POST', `/orgs/${ORG}/tokens`, { name: 'x' }], ...[...tokens.keys()].slice(0, 3).flatMap((id) => [['GET', `/tokens/${id}`], ['POST', `/tokens/${id}/rotate`]] as const)] as const) {
        const r = await call(h.tokens, m, p, ctx, body);
        if (r.status < 400) out.push(`${u}: ${m} ${p} ${r.status}`);
      }
      const inv = await call(h.invitations, 'POST', `/orgs/${ORG}/invitations`, ctx, { email: `${u}-friend@x.test`, role: 'org-admin' });
      if (inv.status < 400) out.push(`${u}: invite ${inv.status}`);
    }
    return out;
  };

  /** After re-creating the id: nothing of the old org shows or grants. */
  const recreatedIsEmpty = async () => {
    const created = await call(h.admin, 'POST', '/orgs', root, { id: ORG, name: 'Again' });
    expect(created.status).toBe(201);
    expect((await call(h.admin, 'GET', `/orgs/${ORG}/members`, root)).body.items.map((m: { userId: string }) => m.userId)).toEqual(['root']);
    expect((await call(h.tokens, 'GET', `/orgs/${ORG}/tokens`, root)).body.items).toEqual([]);
    expect((await call(h.invitations, 'GET', `/orgs/${ORG}/invitations`, root)).body.items).toEqual([]);
    expect((await call(h.admin, 'GET', `/orgs/${ORG}/roles`, root)).body.items.filter((r: { builtIn: boolean }) => !r.builtIn)).toEqual([]);
    // An admin of the new org (and no more than that) sees none of the old org's tokens.
    expect((await call(h.admin, 'PUT', `/orgs/${ORG}/members/newadmin`, root, { roles: ['org-admin'] })).status).toBe(201);
    for (const id of tokens.keys()) expect((await call(h.tokens, 'GET', `/tokens/${id}`, userContext('newadmin'))).status).toBe(404);
    const items = (await rt.store.db.client.send(new ScanCommand({ TableName: rt.tableName }))).Items!.map((i) => unmarshall(i));
    expect(items.filter((i) => i.type === 'membership' && i.orgId === ORG).map((i) => i.userId).sort()).toEqual(['newadmin', 'root']);
    rt.clock.advance(31);
    expect((await grants()).filter((g) => g !== 'user root')).toEqual([]);
  };

  const untouched = async () => {
    expect((await explain('k0', 'kept')).allowed).toBe(true);
    expect((await call(h.admin, 'GET', '/orgs/kept', root)).status).toBe(200);
  };

  return { rt, h, call, root, users, tokens, rest, explain, racers, deleteOrg, grants, adminLeftovers, recreatedIsEmpty, untouched, hook };
}

/** How many writes an uninterrupted DELETE of a small world makes (so the cases below cover the whole cascade). */
async function cascadeWrites(): Promise<number> {
  const w = await world({ members: 4, tokens: 3 });
  expect((await w.deleteOrg()).status).toBe(204);
  return w.hook.writes;
}

describe('deleting an org while access is being added', () => {
  it('120 members, 40 org tokens and the org\'s own *:* token racing the cascade: nothing is left that grants', async () => {
    const w = await world({ members: 6, tokens: 3 });
    // Warm the authorizer: the org's tokens and members are allowed before.
    for (const c of [...w.tokens.values()].slice(0, 2)) expect(await w.rest(c)).toBe('Allow');
    expect((await w.explain('m1')).allowed).toBe(true);
    const res = await w.deleteOrg({ pauseAt: 1, racers: w.racers({ members: 120, tokens: 40 }) });
    expect(res.status).toBe(204);
    // From the moment the DELETE answers: the admin API at once...
    expect(await w.adminLeftovers()).toEqual([]);
    // ...and the authorizer within its cache TTL.
    w.rt.clock.advance(31);
    expect(await w.grants()).toEqual([]);
    await w.untouched();
    await w.recreatedIsEmpty();
  }, 120_000);

  it('racers at every stage of the cascade', async () => {
    const total = await cascadeWrites();
    const stages = [...new Set([0, 1, 2, 3, Math.floor(total / 2), total - 2, total - 1])].filter((k) => k >= 0 && k < total);
    for (const k of stages) {
      const w = await world({ members: 4, tokens: 3 });
      // Stage 0: after the DELETE's checks, before its first write.
      const res = await w.deleteOrg({ ...(k === 0 ? { pauseBefore: 1 } : { pauseAt: k }), racers: w.racers({ members: 6, tokens: 3 }) });
      expect(res.status, `paused after write ${k}`).toBe(204);
      expect(await w.adminLeftovers(), `paused after write ${k}`).toEqual([]);
      w.rt.clock.advance(31);
      expect(await w.grants(), `paused after write ${k} of ${total}`).toEqual([]);
      await w.recreatedIsEmpty();
    }
  }, 240_000);

  it('an index that lags behind the base table hides nothing from the cascade', async () => {
    const w = await world({ members: 3, tokens: 2 });
    w.hook.lagging = true;
    // Written just before the DELETE: not in the index yet when the cascade asks it.
    await w.racers({ members: 10, tokens: 5 })();
    const res = await w.deleteOrg({ lagging: true });
    expect(res.status).toBe(204);
    w.rt.clock.advance(31);
    expect(await w.grants()).toEqual([]);
    w.hook.lagging = false;
    await w.recreatedIsEmpty();
  }, 60_000);
});

describe('data written before org partitions indexed their children', () => {
  it('is found through the org listings and goes too', async () => {
    const w = await world({ members: 2, tokens: 1 });
    const now = w.rt.clock.seconds;
    // As the store wrote them before: the child alone, no index item in the org's partition.
    const put = (item: Record<string, unknown>) => w.rt.store.db.client.send(new PutItemCommand({ TableName: w.rt.tableName, Item: toItem(item) }));
    for (const u of ['old1', 'old2']) {
      await put(membershipItem(ORG, u, ['org-admin'], now));
      w.users.add(u);
    }
    const t = generateToken();
    await put(tokenItem({ id: t.id, kind: 'org', orgId: ORG, name: 'old', secretHash: hashSecret(t.secret), createdAt: now, expiresAt: now + 86400 }));
    w.tokens.set(t.id, t.token);
    expect((await w.explain('old1')).allowed).toBe(true);
    expect(await w.rest(t.token)).toBe('Allow');
    expect((await w.deleteOrg()).status).toBe(204);
    w.rt.clock.advance(31);
    expect(await w.grants()).toEqual([]);
    await w.recreatedIsEmpty();
  }, 60_000);
});

describe('an interrupted cascade', () => {
  it('grants nothing, refuses the id, and a retried DELETE finishes it', async () => {
    const total = await cascadeWrites();
    const stages = [...new Set([2, 3, 4, Math.floor(total / 2), total - 2, total - 1])].filter((k) => k >= 2 && k < total);
    for (const k of stages) {
      const w = await world({ members: 4, tokens: 3 });
      for (const c of [...w.tokens.values()].slice(0, 2)) expect(await w.rest(c)).toBe('Allow');
      const failed = await w.deleteOrg({ failAt: k });
      expect(failed.status, `failed at write ${k}`).toBe(503);
      // Whatever the cascade left: through the admin API at once, through the authorizer within its TTL.
      expect(await w.adminLeftovers(), `failed at write ${k} of ${total}`).toEqual([]);
      const explained = await Promise.all([...w.users].filter((u) => u !== 'root').map(async (u) => [u, (await w.explain(u)).allowed] as const));
      expect(explained.filter(([, allowed]) => allowed), `failed at write ${k} of ${total}`).toEqual([]);
      w.rt.clock.advance(31);
      expect(await w.grants(), `failed at write ${k} of ${total}`).toEqual([]);
      // While it is being deleted, the id cannot be taken again.
      expect((await w.call(w.h.admin, 'POST', '/orgs', w.root, { id: ORG, name: 'Too soon' })).status).toBe(409);
      // Writes into it fail, whoever makes them.
      await w.racers({ members: 3, tokens: 2 })();
      expect((await w.deleteOrg()).status, `retry after failing at write ${k}`).toBe(204);
      await w.untouched();
      await w.recreatedIsEmpty();
    }
  }, 300_000);
});

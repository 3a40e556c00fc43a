import { beforeAll, describe, expect, it } from 'vitest';
import { buildHandlers } from '../../functions/apps';
import type { HttpApiEvent } from '../../core/http/api';
import { generateToken } from '../../core/identity/token-format';
import { httpEvent, userContext, type AuthorizerContext } from '../support/events';
import { testRuntime } from '../support/runtime';

/**
 * Every listing that takes a cursor, through the real handlers: a cursor is hostile
 * input. A forged one (another partition, outside the query's key range, wrong types,
 * garbage) is a 400 `invalid-cursor`, and never reaches DynamoDB as a request that
 * DynamoDB itself rejects (no 503, no error log).
 */

type Handler = (e: HttpApiEvent) => Promise<{ statusCode: number; body: string }>;

async function setup() {
  const rt = await testRuntime({ ttl: false });
  const h = buildHandlers(rt);
  const now = rt.clock.seconds;
  await rt.store.users.putSiteRoles('root', ['site-admin'], now);
  const dynamoErrors: string[] = [];
  // Records every request DynamoDB itself refused (the request still goes out).
  rt.store.db.client.middlewareStack.add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        dynamoErrors.push(`${String(context.commandName)}: ${(err as Error).name}`);
        throw err;
      }
    },
    { step: 'initialize', name: 'record-dynamo-errors' },
  );
  const call = async (api: Handler, method: string, path: string, ctx: AuthorizerContext, body?: unknown, query?: Record<string, string>) => {
    const res = await api(httpEvent(method, path, { context: ctx, ...(body !== undefined ? { body } : {}), ...(query ? { query } : {}) }));
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
  };
  const root = userContext('root');
  for (const id of ['acme', 'globex', 'initech']) expect((await call(h.admin, 'POST', '/orgs', root, { id, name: id })).status).toBe(201);
  for (const u of ['m1', 'm2', 'm3']) expect((await call(h.admin, 'PUT', `/orgs/acme/members/${u}`, root, { roles: ['org-member'] })).status).toBe(201);
  const tokenIds: string[] = [];
  for (const name of ['a', 'b', 'c']) {
    rt.clock.advance(1);
    expect((await call(h.tokens, 'POST', '/tokens', root, { name })).status).toBe(201);
    const org = await call(h.tokens, 'POST', '/orgs/acme/tokens', root, { name });
    expect(org.status).toBe(201);
    tokenIds.push(org.body.id);
    expect((await call(h.tokens, 'POST', '/site/tokens', root, { name })).status).toBe(201);
  }
  // Access log entries of one token: failed attempts through the REST authorizer.
  for (let i = 0; i < 3; i++) {
    rt.clock.advance(61);
    const forged = generateToken(tokenIds[0]).token;
    await expect(h.rest({ type: 'TOKEN', authorizationToken: `Bearer ${forged}`, methodArn: 'arn:aws:execute-api:us-east-1:123456789012:api123/prod/GET/x' })).rejects.toThrow('Unauthorized');
  }
  for (const email of ['a@x.test', 'b@x.test', 'c@x.test']) {
    rt.clock.advance(1);
    expect((await call(h.invitations, 'POST', '/orgs/acme/invitations', root, { email, role: 'org-member' })).status).toBe(201);
    expect((await call(h.invitations, 'POST', '/orgs/globex/invitations', root, { email: 'a@x.test', role: 'org-member' })).status).toBe(email === 'a@x.test' ? 201 : 409);
  }
  for (const email of ['a@x.test']) {
    rt.clock.advance(1);
    expect((await call(h.invitations, 'POST', '/orgs/initech/invitations', root, { email, role: 'org-member' })).status).toBe(201);
  }
  return { rt, h, call, root, tokenIds, dynamoErrors };
}

type S = Awaited<ReturnType<typeof setup>>;

/** One listing: how to call it with a cursor, and what its cursor pins and bounds. */
interface Listing {
  name: string;
  call: (s: S, cursor?: string) => Promise<{ status: number; body: { items: unknown[]; nextCursor?: string; error?: { code: string } } }>;
  /** The key attribute pinned to the listing's partition. */
  partition: string;
  /** The sort key of the queried index or table. */
  sort: string;
  /** Sort-key values inside the partition but outside the query's key range. */
  outOfRange: string[];
}

const LISTINGS: Listing[] = [
  { name: 'GET /orgs', call: (s, c) => s.call(s.h.admin, 'GET', '/orgs', s.root, undefined, { limit: '1', ...(c ? { cursor: c } : {}) }), partition: 'gsi1pk', sort: 'gsi1sk', outOfRange: [] },
  { name: 'GET /orgs/{orgId}/members', call: (s, c) => s.call(s.h.admin, 'GET', '/orgs/acme/members', s.root, undefined, { limit: '1', ...(c ? { cursor: c } : {}) }), partition: 'gsi1pk', sort: 'gsi1sk', outOfRange: [] },
  { name: 'GET /tokens', call: (s, c) => s.call(s.h.tokens, 'GET', '/tokens', s.root, undefined, { limit: '1', ...(c ? { cursor: c } : {}) }), partition: 'gsi1pk', sort: 'gsi1sk', outOfRange: [] },
  { name: 'GET /orgs/{orgId}/tokens', call: (s, c) => s.call(s.h.tokens, 'GET', '/orgs/acme/tokens', s.root, undefined, { limit: '1', ...(c ? { cursor: c } : {}) }), partition: 'gsi1pk', sort: 'gsi1sk', outOfRange: [] },
  { name: 'GET /site/tokens', call: (s, c) => s.call(s.h.tokens, 'GET', '/site/tokens', s.root, undefined, { limit: '1', ...(c ? { cursor: c } : {}) }), partition: 'gsi2pk', sort: 'gsi2sk', outOfRange: [] },
  {
    name: 'GET /tokens/{id}/access-log',
    call: (s, c) => s.call(s.h.tokens, 'GET', `/tokens/${s.tokenIds[0]}/access-log`, s.root, undefined, { limit: '1', ...(c ? { cursor: c } : {}) }),
    partition: 'pk',
    sort: 'sk',
    // The token record itself lives in the same partition, outside `begins_with(sk, LOG#)`.
    outOfRange: ['TOKEN', 'A', 'LOG', 'M'],
  },
  { name: 'GET /orgs/{orgId}/invitations', call: (s, c) => s.call(s.h.invitations, 'GET', '/orgs/acme/invitations', s.root, undefined, { limit: '1', ...(c ? { cursor: c } : {}) }), partition: 'gsi1pk', sort: 'gsi1sk', outOfRange: [] },
  {
    name: 'GET /invitations',
    call: (s, c) => s.call(s.h.invitations, 'GET', '/invitations', userContext('someone', 'a@x.test'), undefined, { limit: '1', ...(c ? { cursor: c } : {}) }),
    partition: 'gsi2pk',
    sort: 'gsi2sk',
    outOfRange: [],
  },
];

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8').toString('base64url');
const decode = (c: string) => JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as Record<string, string>;

/** Forgeries of a real cursor: another partition, out of range, wrong types, wrong key sets. */
function forgeries(l: Listing, real: Record<string, string>): [string, string][] {
  const out: [string, string][] = [];
  out.push(['wrong partition', b64({ ...real, [l.partition]: `${real[l.partition]}x` })]);
  out.push(['another listing\'s partition', b64({ ...real, [l.partition]: 'ORGS' === real[l.partition] ? 'TOKENS' : 'ORGS' })]);
  for (const v of l.outOfRange) out.push([`sort key ${v} outside the key range`, b64({ ...real, [l.sort]: v })]);
  for (const k of Object.keys(real)) {
    out.push([`${k} empty`, b64({ ...real, [k]: '' })]);
    out.push([`${k} over DynamoDB's key size`, b64({ ...real, [k]: 'x'.repeat(1100) })]);
    out.push([`${k} with a lone surrogate`, b64({ ...real, [k]: `${real[k]}\ud800` })]);
    for (const bad of [1, true, null, { S: 'x' }, ['x']]) out.push([`${k} as ${JSON.stringify(bad)}`, b64({ ...real, [k]: bad })]);
    const { [k]: _dropped, ...rest } = real;
    out.push([`${k} missing`, b64(rest)]);
  }
  out.push(['an extra key', b64({ ...real, extra: 'x' })]);
  return out;
}

const GARBAGE: [string, string][] = [
  ['not base64url', '!!!*'],
  ['base64 of text', b64('hello')],
  ['base64 of an array', b64([1, 2])],
  ['base64 of null', b64('null')],
  ['base64 of a string', b64('"pk"')],
  ['base64 of {}', b64({})],
  ['too long', 'A'.repeat(3000)],
  ['padding', `${b64({ pk: 'x' })}==`],
];

describe('forged cursors are 400 invalid-cursor on every listing', () => {
  let s: S;
  beforeAll(async () => {
    s = await setup();
  }, 60_000);

  for (const l of LISTINGS) {
    it(l.name, async () => {
      const first = await l.call(s);
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      expect(first.body.nextCursor, 'the listing has a second page').toBeDefined();
      const second = await l.call(s, first.body.nextCursor);
      expect(second.status).toBe(200);
      expect(second.body.items).not.toEqual(first.body.items);
      const real = decode(first.body.nextCursor!);
      const failures: string[] = [];
      for (const [what, cursor] of [...forgeries(l, real), ...GARBAGE]) {
        const errorsBefore = s.dynamoErrors.length;
        const logsBefore = s.rt.logs.length;
        const res = await l.call(s, cursor);
        const errorLogs = s.rt.logs.slice(logsBefore).filter((line) => JSON.parse(line).level === 'ERROR');
        if (res.status !== 400 || res.body.error?.code !== 'invalid-cursor' || s.dynamoErrors.length !== errorsBefore || errorLogs.length > 0) {
          failures.push(`${what}: ${res.status} ${JSON.stringify(res.body.error ?? res.body).slice(0, 120)} ${s.dynamoErrors.slice(errorsBefore).join(',')}`);
        }
      }
      expect(failures).toEqual([]);
    });
  }
});

describe('GET /audit cursors', () => {
  let s: S;
  beforeAll(async () => {
    s = await setup();
  }, 60_000);

  it('pages through and refuses forged outer and inner cursors', async () => {
    const q = (cursor?: string) => s.call(s.h.admin, 'GET', '/audit', s.root, undefined, { limit: '2', ...(cursor ? { cursor } : {}) });
    const first = await q();
    expect(first.status).toBe(200);
    expect(first.body.nextCursor).toBeDefined();
    expect((await q(first.body.nextCursor)).status).toBe(200);
    const outer = decode(first.body.nextCursor) as { d: string; c?: string };
    expect(outer.c, 'a cursor inside one day').toBeDefined();
    const inner = decode(outer.c!);
    const day = outer.d;
    const forged: [string, string][] = [
      ['a day that does not exist', b64({ d: '2026-13-45' })],
      ['a day far in the future', b64({ d: '9999-12-31' })],
      ['a day before the window', b64({ d: '2001-01-01' })],
      ['day as a number', b64({ d: 20261122 })],
      ['inner cursor of another day', b64({ d: day, c: b64({ ...inner, pk: 'AUDIT#2001-01-01' }) })],
      ['inner sort key after the window', b64({ d: day, c: b64({ ...inner, sk: '~~~' }) })],
      ['inner sort key before the window', b64({ d: day, c: b64({ ...inner, sk: '0' }) })],
      ['inner sort key empty', b64({ d: day, c: b64({ ...inner, sk: '' }) })],
      ['inner garbage', b64({ d: day, c: '!!' })],
      ['inner as a number', b64({ d: day, c: 5 })],
      ['extra field', b64({ d: day, x: 1 })],
      ...GARBAGE,
    ];
    const failures: string[] = [];
    for (const [what, cursor] of forged) {
      const errorsBefore = s.dynamoErrors.length;
      const res = await q(cursor);
      if (res.status !== 400 || res.body.error?.code !== 'invalid-cursor' || s.dynamoErrors.length !== errorsBefore) {
        failures.push(`${what}: ${res.status} ${JSON.stringify(res.body.error ?? res.body).slice(0, 120)} ${s.dynamoErrors.slice(errorsBefore).join(',')}`);
      }
    }
    expect(failures).toEqual([]);
  });
});

describe('a start key DynamoDB refuses anyway', () => {
  it('is still a 400 invalid-cursor (backstop), while the same refusal without a cursor stays a 503', async () => {
    const s = await setup();
    const first = await s.call(s.h.admin, 'GET', '/orgs/acme/members', s.root, undefined, { limit: '1' });
    expect(first.body.nextCursor).toBeDefined();
    // Stands in for DynamoDB: refuses every Query as invalid, as it does an out-of-range start key.
    s.rt.store.db.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'QueryCommand' && (args.input as { IndexName?: string }).IndexName === 'gsi1') {
          throw Object.assign(new Error('The provided starting key is outside query boundaries based on provided conditions'), { name: 'ValidationException', $fault: 'client' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'refuse-queries', priority: 'high' },
    );
    const paged = await s.call(s.h.admin, 'GET', '/orgs/acme/members', s.root, undefined, { limit: '1', cursor: first.body.nextCursor });
    expect(paged).toMatchObject({ status: 400, body: { error: { code: 'invalid-cursor' } } });
    expect((await s.call(s.h.admin, 'GET', '/orgs/acme/members', s.root, undefined, { limit: '1' })).status).toBe(503);
  }, 60_000);
});

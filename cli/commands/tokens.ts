import { randomUUID } from 'node:crypto';
import { UsageError } from '../args';
import { ApiError, Unreachable } from '../client';
import { type Command, type Context, fields, intOption, list, listing, more, PAGE_OPTIONS, seg, str, table, when } from '../command';

const VIEW_ORDER = ['id', 'name', 'kind', 'status', 'orgId', 'ownerId', 'scopes', 'createdAt', 'expiresAt', 'lastUsedAt', 'revokedAt'];

const tokenRows = (items: unknown[]) =>
  table(items as Record<string, unknown>[], [
    ['id', (t) => t.id],
    ['name', (t) => t.name],
    ['kind', (t) => t.kind],
    ['status', (t) => t.status],
    ['org', (t) => t.orgId],
    ['scopes', (t) => (t.scopes === null ? 'all' : t.scopes)],
    ['expires', (t) => when(t.expiresAt)],
    ['last used', (t) => when(t.lastUsedAt)],
  ]);

/** Which listing or creation endpoint: personal (default), `--org`, or `--site`. */
function holder(ctx: Context): string {
  const org = str(ctx.values.org);
  if (org !== undefined && ctx.values.site) throw new UsageError('give --org or --site, not both');
  return org !== undefined ? `/orgs/${seg(org)}/tokens` : ctx.values.site ? '/site/tokens' : '/tokens';
}

const HOLDER_OPTIONS = {
  org: { type: 'string', value: '<orgId>', description: 'an org service token (default: a personal token of the caller)' },
  site: { type: 'boolean', description: 'a site token (site admins)' },
} as const;

const RETRIES = 2;

export const TOKEN_COMMANDS: Command[] = [
  {
    path: ['tokens', 'create'],
    routes: ['POST /tokens', 'POST /orgs/{orgId}/tokens', 'POST /site/tokens'],
    spec: {
      summary: 'Create a token and print its secret (shown once).',
      options: {
        name: { type: 'string', value: '<name>', description: 'what it is for, e.g. laptop or ci', required: true },
        ...HOLDER_OPTIONS,
        scope: { type: 'string', multiple: true, value: '<resource:action>', description: 'narrow it to these permissions (default: all of the holder\'s rights)' },
        days: { type: 'string', value: '<1..3650>', description: 'lifetime in days (default 365)' },
        'idempotency-key': { type: 'string', value: '<key>', description: 'make retries safe across runs (default: a fresh random key, reused by the automatic retries of this run)' },
      },
      details: ['The request carries an Idempotency-Key, so when the answer is lost (connection dropped, timeout, 503) the CLI retries and gets the same token back instead of a second one.'],
      examples: ['gatehouse tokens create --name laptop --days 30', 'gatehouse tokens create --org acme --name ci --scope project:read --field token'],
    },
    async run(ctx) {
      const days = intOption(ctx.values, 'days', 1, 3650);
      const body = { name: str(ctx.values.name)!, ...(list(ctx.values.scope).length ? { scopes: list(ctx.values.scope) } : {}), ...(days ? { expiresInDays: days } : {}) };
      const key = str(ctx.values['idempotency-key']) ?? randomUUID();
      const path = holder(ctx);
      for (let attempt = 0; ; attempt++) {
        try {
          const t = (await ctx.client.call('POST', path, { body, headers: { 'idempotency-key': key } })).body as Record<string, unknown>;
          return { json: t, human: `created token ${String(t.id)} (${String(t.kind)}, expires ${when(t.expiresAt)})\nsecret, shown once; store it now:\n${String(t.token)}\n` };
        } catch (err) {
          const retryable = err instanceof Unreachable || (err instanceof ApiError && err.status === 503);
          if (!retryable || attempt >= RETRIES) throw err;
          await ctx.sleep(500 * (attempt + 1));
        }
      }
    },
  },
  {
    path: ['tokens', 'list'],
    routes: ['GET /tokens', 'GET /orgs/{orgId}/tokens', 'GET /site/tokens'],
    spec: { summary: 'List tokens: the caller\'s personal ones, an org\'s (--org), or every token (--site).', options: { ...HOLDER_OPTIONS, ...PAGE_OPTIONS }, examples: ['gatehouse tokens list', 'gatehouse tokens list --org acme --all'] },
    async run(ctx) {
      const page = await listing(ctx, holder(ctx));
      return { json: page, human: tokenRows(page.items) + more(page) };
    },
  },
  {
    path: ['tokens', 'show'],
    routes: ['GET /tokens/{id}'],
    spec: { summary: 'Show one token (never its secret).', args: [{ name: 'id', description: 'the token id (the 16 characters after gat_)' }] },
    async run(ctx) {
      const t = (await ctx.client.call('GET', `/tokens/${seg(ctx.args.id)}`)).body as Record<string, unknown>;
      return { json: t, human: fields(t, VIEW_ORDER) };
    },
  },
  {
    path: ['tokens', 'rotate'],
    routes: ['POST /tokens/{id}/rotate'],
    spec: {
      summary: 'Give a token a new secret (same id) and print it (shown once).',
      args: [{ name: 'id', description: 'the token id' }],
      options: { 'grace-seconds': { type: 'string', value: '<0..86400>', description: 'keep the old secret working this long (default 0)' } },
    },
    async run(ctx) {
      const grace = intOption(ctx.values, 'grace-seconds', 0, 86400);
      const t = (await ctx.client.call('POST', `/tokens/${seg(ctx.args.id)}/rotate`, { body: grace !== undefined ? { graceSeconds: grace } : {} })).body as Record<string, unknown>;
      const old = t.previousValidUntil ? `the old secret works until ${when(t.previousValidUntil)}` : 'the old secret no longer works';
      return { json: t, human: `rotated token ${String(t.id)}; ${old}\nnew secret, shown once; store it now:\n${String(t.token)}\n` };
    },
  },
  {
    path: ['tokens', 'revoke'],
    routes: ['DELETE /tokens/{id}'],
    spec: { summary: 'Revoke a token.', args: [{ name: 'id', description: 'the token id' }] },
    async run(ctx) {
      await ctx.client.call('DELETE', `/tokens/${seg(ctx.args.id)}`);
      return { human: `revoked token ${ctx.args.id}\n` };
    },
  },
  {
    path: ['tokens', 'access-log'],
    routes: ['GET /tokens/{id}/access-log'],
    spec: { summary: 'A token\'s access log: uses and failed attempts, newest first.', args: [{ name: 'id', description: 'the token id' }], options: PAGE_OPTIONS },
    async run(ctx) {
      const page = await listing(ctx, `/tokens/${seg(ctx.args.id)}/access-log`);
      const rows = table(page.items as Record<string, unknown>[], [['at', (e) => when(e.at)], ['outcome', (e) => e.outcome], ['reason', (e) => e.reason], ['route', (e) => e.route], ['source ip', (e) => e.sourceIp], ['count', (e) => e.count]]);
      return { json: page, human: rows + more(page) };
    },
  },
];

import { UsageError } from '../args';
import { type Command, type Context, fields, listing, more, PAGE_OPTIONS, readInput, str, table, when } from '../command';

/** `--since`/`--until`: epoch seconds, an ISO date-time, or an age like 30m, 24h, 7d. */
export function parseTime(v: string, nowMs: number, name: string): number {
  if (/^\d{1,12}$/.test(v)) return Number(v);
  const age = /^(\d{1,6})([smhd])$/.exec(v);
  if (age) return Math.floor(nowMs / 1000) - Number(age[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[age[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(v);
  if (/^\d{4}-\d{2}-\d{2}/.test(v) && Number.isFinite(t)) return Math.floor(t / 1000);
  throw new UsageError(`--${name} takes epoch seconds, an ISO date-time or an age like 24h`);
}

async function credentialFrom(ctx: Context): Promise<string | undefined> {
  const file = str(ctx.values['credential-file']);
  if (file === undefined) return undefined;
  const text = (await readInput(ctx, file)).trim();
  if (!/^[\x21-\x7e]{1,8192}$/.test(text)) throw new UsageError('--credential-file must hold one credential on one line');
  return text;
}

export const MISC_COMMANDS: Command[] = [
  {
    path: ['me'],
    routes: ['GET /me'],
    spec: { summary: 'Who the credential in use is: id, kind, site roles, memberships, token.' },
    async run(ctx) {
      const me = (await ctx.client.call('GET', '/me')).body as Record<string, unknown>;
      const orgs = (me.orgs as { id: string; roles: string[] }[] | undefined ?? []).map((o) => `${o.id} (${o.roles.join(', ') || 'no roles'})`);
      return { json: me, human: fields({ ...me, orgs }, ['id', 'kind', 'email', 'siteRoles', 'orgs', 'token']) };
    },
  },
  {
    path: ['explain'],
    routes: ['POST /authz/explain'],
    spec: {
      summary: 'Explain the decision the authorizer would make for a request, and why.',
      args: [{ name: 'method', description: 'the HTTP method, e.g. GET' }, { name: 'path', description: 'the request path, e.g. /orgs/acme/projects' }],
      options: {
        user: { type: 'string', value: '<userId>', description: 'decide for this user instead of you (site admins)' },
        'credential-file': { type: 'string', value: '<file>', description: 'decide for the credential in this file (- reads standard input); it is never printed' },
      },
      examples: ['gatehouse explain GET /demo/orgs/acme/hello', 'gatehouse explain DELETE /orgs/acme --user bob'],
    },
    async run(ctx) {
      const credential = await credentialFrom(ctx);
      const user = str(ctx.values.user);
      if (credential !== undefined && user !== undefined) throw new UsageError('give --user or --credential-file, not both');
      const body = { method: ctx.args.method!.toUpperCase(), path: ctx.args.path!, ...(user !== undefined ? { userId: user } : {}), ...(credential !== undefined ? { credential } : {}) };
      const e = (await ctx.client.call('POST', '/authz/explain', { body })).body as Record<string, unknown> & { reasons?: { step: string; detail: string }[] };
      const reasons = (e.reasons ?? []).map((r) => `  ${r.step}: ${r.detail}`).join('\n');
      return { json: e, human: `${e.allowed ? 'ALLOW' : 'DENY'} (${String(e.code)})\n${fields({ principal: e.principalId, route: e.route, level: e.level, role: e.role, permission: e.permission })}${reasons ? `reasons:\n${reasons}\n` : ''}` };
    },
  },
  {
    path: ['audit'],
    routes: ['GET /audit'],
    spec: {
      summary: 'Audit records, newest first (site admins and viewers).',
      options: {
        since: { type: 'string', value: '<time>', description: 'from: epoch seconds, ISO date-time, or an age like 24h (default 7d)' },
        until: { type: 'string', value: '<time>', description: 'to (default now)' },
        actor: { type: 'string', value: '<id>', description: 'only what this user id or token:<id> did' },
        ...PAGE_OPTIONS,
      },
      examples: ['gatehouse audit --since 24h', 'gatehouse audit --actor alice --all'],
    },
    async run(ctx) {
      const since = str(ctx.values.since);
      const until = str(ctx.values.until);
      const page = await listing(ctx, '/audit', {
        ...(since !== undefined ? { since: String(parseTime(since, ctx.now(), 'since')) } : {}),
        ...(until !== undefined ? { until: String(parseTime(until, ctx.now(), 'until')) } : {}),
        actor: str(ctx.values.actor),
      });
      const rows = table(page.items as Record<string, unknown>[], [['at', (r) => when(r.at)], ['actor', (r) => r.actor], ['action', (r) => r.action], ['target', (r) => r.target], ['outcome', (r) => r.outcome], ['reason', (r) => r.reason]]);
      return { json: page, human: rows + more(page) };
    },
  },
  {
    path: ['api'],
    routes: [],
    spec: {
      summary: 'Call any admin API endpoint and print its JSON answer (for endpoints without a command of their own).',
      args: [{ name: 'method', description: 'GET, POST, PUT or DELETE' }, { name: 'path', description: 'the path, e.g. /policies/routes (a query string is kept)' }],
      options: { data: { type: 'string', value: '<json>', description: 'the JSON body' }, 'data-file': { type: 'string', value: '<file>', description: 'the JSON body from a file (- reads standard input)' } },
      examples: ['gatehouse api GET /policies/routes', 'gatehouse api PUT /policies/gate --data \'{"expression":null}\''],
    },
    async run(ctx) {
      const method = ctx.args.method!.toUpperCase();
      if (!['GET', 'POST', 'PUT', 'DELETE', 'PATCH'].includes(method)) throw new UsageError(`unknown method ${JSON.stringify(method.slice(0, 10))}`);
      const path = ctx.args.path!;
      if (!path.startsWith('/')) throw new UsageError('the path starts with /');
      const inline = str(ctx.values.data);
      const file = str(ctx.values['data-file']);
      if (inline !== undefined && file !== undefined) throw new UsageError('give --data or --data-file, not both');
      const text = inline ?? (file !== undefined ? await readInput(ctx, file) : undefined);
      let body: unknown;
      if (text !== undefined) {
        try {
          body = JSON.parse(text);
        } catch {
          throw new UsageError('the body is not JSON');
        }
      }
      const [p, q] = [path.split('?')[0]!, path.includes('?') ? Object.fromEntries(new URLSearchParams(path.slice(path.indexOf('?') + 1))) : {}];
      const answer = await ctx.client.call(method, p, { ...(body !== undefined ? { body } : {}), query: q });
      return { json: answer.body, human: answer.body === undefined ? `${answer.status}\n` : `${JSON.stringify(answer.body, null, 2)}\n` };
    },
  },
];

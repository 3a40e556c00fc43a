import { UsageError } from '../args';
import { type Command, readJson, seg, str, table } from '../command';

const ORG = { type: 'string', value: '<orgId>', description: 'an org role (default: a site role)' } as const;
const base = (org: string | undefined) => (org !== undefined ? `/orgs/${seg(org)}/roles` : '/roles');
const perms = (v: unknown) => (Array.isArray(v) ? v.map((p: { resource?: string; action?: string; negate?: boolean }) => `${p.negate ? '!' : ''}${p.resource}:${p.action}`) : []);

export const ROLE_COMMANDS: Command[] = [
  {
    path: ['roles', 'list'],
    routes: ['GET /roles', 'GET /orgs/{orgId}/roles'],
    spec: { summary: 'List roles: built-in and custom site roles, or an org\'s roles (--org).', options: { org: ORG } },
    async run(ctx) {
      const page = (await ctx.client.call('GET', base(str(ctx.values.org)))).body as { items: Record<string, unknown>[] };
      const rows = table(page.items, [['name', (r) => r.name], ['built-in', (r) => (r.builtIn ? 'yes' : 'no')], ['site', (r) => perms(r.site)], ['org', (r) => perms(r.org)], ['member', (r) => perms(r.member)], ['user', (r) => perms(r.user)]]);
      return { json: page, human: rows };
    },
  },
  {
    path: ['roles', 'put'],
    routes: ['PUT /roles/{name}', 'PUT /orgs/{orgId}/roles/{name}'],
    spec: {
      summary: 'Create or replace a custom role from a JSON file.',
      args: [{ name: 'name', description: 'the role name: lower-case letters, digits and dashes' }],
      options: { file: { type: 'string', value: '<file>', description: 'the role as JSON ({ "displayName"?, "site"?, "org"?, "member"?, "user"? }); - reads standard input', required: true }, org: ORG },
      examples: ['gatehouse roles put auditor --file auditor.json', 'echo \'{"org":[{"resource":"project","action":"read"}]}\' | gatehouse roles put reader --org acme --file -'],
    },
    async run(ctx) {
      const body = await readJson(ctx, str(ctx.values.file)!);
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new UsageError('the role file must hold a JSON object');
      const answer = await ctx.client.call('PUT', `${base(str(ctx.values.org))}/${seg(ctx.args.name)}`, { body });
      const r = answer.body as Record<string, unknown>;
      return { json: r, human: `${answer.status === 201 ? 'created' : 'replaced'} role ${String(r.name)}${r.orgId ? ` in ${String(r.orgId)}` : ''}\n` };
    },
  },
  {
    path: ['roles', 'delete'],
    routes: ['DELETE /roles/{name}', 'DELETE /orgs/{orgId}/roles/{name}'],
    spec: { summary: 'Delete a custom role and take it from everyone who holds it.', args: [{ name: 'name', description: 'the role name' }], options: { org: ORG } },
    async run(ctx) {
      await ctx.client.call('DELETE', `${base(str(ctx.values.org))}/${seg(ctx.args.name)}`);
      return { human: `deleted role ${ctx.args.name}\n` };
    },
  },
];

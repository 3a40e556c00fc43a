import { UsageError } from '../args';
import { type Command, fields, list, listing, more, PAGE_OPTIONS, seg, str, table, when } from '../command';

const ORG = { type: 'string', value: '<orgId>', description: 'the org', required: true } as const;
const ROLES = { type: 'string', multiple: true, value: '<role>', description: 'a role to hold; give every role the user should have' } as const;

function roles(values: Record<string, unknown>): string[] {
  const r = list(values.role as string[] | undefined);
  if (r.length === 0 && !values.none) throw new UsageError('give at least one --role, or --none to take every role away');
  if (r.length > 0 && values.none) throw new UsageError('give --role or --none, not both');
  return r;
}

export const ORG_COMMANDS: Command[] = [
  {
    path: ['orgs', 'create'],
    routes: ['POST /orgs'],
    spec: { summary: 'Create an organization (site admins).', options: { name: { type: 'string', value: '<name>', description: 'display name', required: true }, id: { type: 'string', value: '<orgId>', description: 'its id: lower-case letters, digits and dashes (default: made from the name)' } }, examples: ['gatehouse orgs create --id acme --name Acme'] },
    async run(ctx) {
      const id = str(ctx.values.id);
      const o = (await ctx.client.call('POST', '/orgs', { body: { name: str(ctx.values.name), ...(id !== undefined ? { id } : {}) } })).body as Record<string, unknown>;
      return { json: o, human: `created org ${String(o.id)} (${String(o.name)})\n` };
    },
  },
  {
    path: ['orgs', 'list'],
    routes: ['GET /orgs'],
    spec: { summary: 'List orgs: every org for site roles, else your own.', options: PAGE_OPTIONS },
    async run(ctx) {
      const page = await listing(ctx, '/orgs');
      return { json: page, human: table(page.items as Record<string, unknown>[], [['id', (o) => o.id], ['name', (o) => o.name], ['created', (o) => when(o.createdAt)]]) + more(page) };
    },
  },
  {
    path: ['orgs', 'show'],
    routes: ['GET /orgs/{orgId}'],
    spec: { summary: 'Show an org.', args: [{ name: 'orgId', description: 'the org id' }] },
    async run(ctx) {
      const o = (await ctx.client.call('GET', `/orgs/${seg(ctx.args.orgId)}`)).body as Record<string, unknown>;
      return { json: o, human: fields(o, ['id', 'name', 'createdAt', 'createdBy']) };
    },
  },
  {
    path: ['orgs', 'delete'],
    routes: ['DELETE /orgs/{orgId}'],
    spec: { summary: 'Delete an org with its memberships, org tokens, invitations and custom roles.', args: [{ name: 'orgId', description: 'the org id' }] },
    async run(ctx) {
      await ctx.client.call('DELETE', `/orgs/${seg(ctx.args.orgId)}`);
      return { human: `deleted org ${ctx.args.orgId}\n` };
    },
  },
  {
    path: ['members', 'list'],
    routes: ['GET /orgs/{orgId}/members'],
    spec: { summary: 'List the members of an org.', options: { org: ORG, ...PAGE_OPTIONS } },
    async run(ctx) {
      const page = await listing(ctx, `/orgs/${seg(str(ctx.values.org))}/members`);
      return { json: page, human: table(page.items as Record<string, unknown>[], [['user', (m) => m.userId], ['roles', (m) => m.roles], ['since', (m) => when(m.createdAt)]]) + more(page) };
    },
  },
  {
    path: ['members', 'set'],
    routes: ['PUT /orgs/{orgId}/members/{userId}'],
    spec: {
      summary: 'Add a member to an org, or replace a member\'s roles.',
      args: [{ name: 'userId', description: 'the user id (userIdPrefix + the JWT sub)' }],
      options: { org: ORG, role: ROLES, none: { type: 'boolean', description: 'keep the membership with no role' } },
      examples: ['gatehouse members set --org acme bob --role org-member'],
    },
    async run(ctx) {
      const m = (await ctx.client.call('PUT', `/orgs/${seg(str(ctx.values.org))}/members/${seg(ctx.args.userId)}`, { body: { roles: roles(ctx.values) } })).body as Record<string, unknown>;
      return { json: m, human: `${String(m.userId)} in ${String(m.orgId)}: ${(m.roles as string[]).join(', ') || '(no roles)'}\n` };
    },
  },
  {
    path: ['members', 'remove'],
    routes: ['DELETE /orgs/{orgId}/members/{userId}'],
    spec: { summary: 'Remove a member from an org (anyone may remove themselves).', args: [{ name: 'userId', description: 'the user id' }], options: { org: ORG } },
    async run(ctx) {
      await ctx.client.call('DELETE', `/orgs/${seg(str(ctx.values.org))}/members/${seg(ctx.args.userId)}`);
      return { human: `removed ${ctx.args.userId} from ${String(ctx.values.org)}\n` };
    },
  },
  {
    path: ['site-roles', 'set'],
    routes: ['PUT /users/{userId}/site-roles'],
    spec: {
      summary: 'Replace a user\'s site roles (site-admin, site-viewer, or custom site roles).',
      args: [{ name: 'userId', description: 'the user id' }],
      options: { role: ROLES, none: { type: 'boolean', description: 'take every site role away' } },
      examples: ['gatehouse site-roles set carol --role site-viewer'],
    },
    async run(ctx) {
      const r = (await ctx.client.call('PUT', `/users/${seg(ctx.args.userId)}/site-roles`, { body: { roles: roles(ctx.values) } })).body as Record<string, unknown>;
      return { json: r, human: `${String(r.userId)}: ${(r.roles as string[]).join(', ') || '(no site roles)'}\n` };
    },
  },
];

import { type Command, intOption, listing, more, PAGE_OPTIONS, seg, str, table, when } from '../command';

const STATUS = { type: 'string', value: '<status>', description: 'pending (default for your own), accepted, declined, revoked or expired' } as const;

const rows = (items: unknown[]) =>
  table(items as Record<string, unknown>[], [['id', (i) => i.id], ['org', (i) => i.orgId], ['email', (i) => i.email], ['role', (i) => i.role], ['status', (i) => i.status], ['expires', (i) => when(i.expiresAt)]]);

export const INVITATION_COMMANDS: Command[] = [
  {
    path: ['invitations', 'create'],
    routes: ['POST /orgs/{orgId}/invitations'],
    spec: {
      summary: 'Invite an email address into an org with a role.',
      options: {
        org: { type: 'string', value: '<orgId>', description: 'the org', required: true },
        email: { type: 'string', value: '<address>', description: 'who is invited (they accept with this verified email)', required: true },
        role: { type: 'string', value: '<role>', description: 'the role they get, e.g. org-member', required: true },
        days: { type: 'string', value: '<1..30>', description: 'how long it stays open (default 7)' },
      },
      examples: ['gatehouse invitations create --org acme --email alice@example.com --role org-admin'],
    },
    async run(ctx) {
      const days = intOption(ctx.values, 'days', 1, 30);
      const i = (await ctx.client.call('POST', `/orgs/${seg(str(ctx.values.org))}/invitations`, { body: { email: str(ctx.values.email), role: str(ctx.values.role), ...(days ? { expiresInDays: days } : {}) } })).body as Record<string, unknown>;
      return { json: i, human: `invited ${String(i.email)} to ${String(i.orgId)} as ${String(i.role)} (invitation ${String(i.id)}, expires ${when(i.expiresAt)})\n` };
    },
  },
  {
    path: ['invitations', 'list'],
    routes: ['GET /invitations', 'GET /orgs/{orgId}/invitations'],
    spec: { summary: 'List your own invitations (by your verified email), or an org\'s (--org).', options: { org: { type: 'string', value: '<orgId>', description: 'list the org\'s invitations instead' }, status: STATUS, ...PAGE_OPTIONS } },
    async run(ctx) {
      const org = str(ctx.values.org);
      const page = await listing(ctx, org !== undefined ? `/orgs/${seg(org)}/invitations` : '/invitations', { status: str(ctx.values.status) });
      return { json: page, human: rows(page.items) + more(page) };
    },
  },
  {
    path: ['invitations', 'accept'],
    routes: ['POST /invitations/{id}/accept'],
    spec: { summary: 'Accept an invitation addressed to you (sign in as yourself: a JWT, not a token).', args: [{ name: 'id', description: 'the invitation id' }] },
    async run(ctx) {
      const i = (await ctx.client.call('POST', `/invitations/${seg(ctx.args.id)}/accept`)).body as Record<string, unknown> & { membership?: { roles?: string[] } };
      return { json: i, human: `joined ${String(i.orgId)} as ${(i.membership?.roles ?? []).join(', ')}\n` };
    },
  },
  {
    path: ['invitations', 'decline'],
    routes: ['POST /invitations/{id}/decline'],
    spec: { summary: 'Decline an invitation addressed to you.', args: [{ name: 'id', description: 'the invitation id' }] },
    async run(ctx) {
      await ctx.client.call('POST', `/invitations/${seg(ctx.args.id)}/decline`);
      return { human: `declined invitation ${ctx.args.id}\n` };
    },
  },
  {
    path: ['invitations', 'revoke'],
    routes: ['DELETE /orgs/{orgId}/invitations/{id}'],
    spec: { summary: 'Revoke a pending invitation of an org.', args: [{ name: 'id', description: 'the invitation id' }], options: { org: { type: 'string', value: '<orgId>', description: 'the org', required: true } } },
    async run(ctx) {
      await ctx.client.call('DELETE', `/orgs/${seg(str(ctx.values.org))}/invitations/${seg(ctx.args.id)}`);
      return { human: `revoked invitation ${ctx.args.id}\n` };
    },
  },
];

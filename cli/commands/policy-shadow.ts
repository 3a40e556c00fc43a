import { UsageError } from '../args';
import { type Command, type Context, fields, readJson, seg, str, table, when } from '../command';

const SET = { name: 'set', description: 'the policy set (e.g. default)' };
const candidatePath = (ctx: Context) => `/policies/sets/${seg(ctx.args.set)}/candidate`;

/** The candidate as the API answers it (its number is its ETag). */
async function current(ctx: Context): Promise<{ candidate: string; basedOn: string }> {
  return (await ctx.client.call('GET', candidatePath(ctx))).body as { candidate: string; basedOn: string };
}

/** A policy file as `gatehouse policy pull` writes it: `{ set, version, routes, gate, tests }`. */
async function policyFile(ctx: Context): Promise<{ routes: unknown; gate?: unknown; tests?: unknown }> {
  const file = str(ctx.values.file)!;
  const doc = await readJson(ctx, file);
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError('the policy file must hold a JSON object { set, version, routes, gate, tests }');
  const d = doc as Record<string, unknown>;
  if (d.set !== undefined && d.set !== ctx.args.set) throw new UsageError(`the file is policy set ${JSON.stringify(d.set)}, not ${JSON.stringify(ctx.args.set)}`);
  if (!Array.isArray(d.routes)) throw new UsageError('the policy file has no routes list');
  // `set` and `version` say where the file came from; the candidate is the rest.
  return { routes: d.routes, ...(d.gate !== undefined ? { gate: d.gate } : {}), ...(d.tests !== undefined ? { tests: d.tests } : {}) };
}

/** `gatehouse policy shadow start|report|promote|discard`: a candidate version of a set in shadow (docs/policies.md, "Shadow mode"). */
export const POLICY_SHADOW_COMMANDS: Command[] = [
  {
    path: ['policy', 'shadow', 'start'],
    routes: ['PUT /policies/sets/{set}/candidate', 'GET /policies/sets/{set}/candidate'],
    spec: {
      summary: 'Run a policy file beside the live set: every request is decided by both, only the live set answers.',
      args: [SET],
      options: {
        file: { type: 'string', value: '<file>', description: 'the policy file ({ set, version, routes, gate, tests }, as policy pull writes it); - reads standard input', required: true },
        replace: { type: 'boolean', description: 'replace the set\'s candidate (its report starts again)' },
      },
      examples: ['gatehouse policy shadow start default --file default.json'],
    },
    async run(ctx) {
      const body = await policyFile(ctx);
      const precondition: Record<string, string> = ctx.values.replace ? { 'if-match': `"${(await current(ctx)).candidate}"` } : { 'if-none-match': '*' };
      const answer = (await ctx.client.call('PUT', candidatePath(ctx), { body, headers: precondition })).body as Record<string, unknown>;
      return { json: answer, human: `candidate ${String(answer.candidate)} of ${ctx.args.set} runs in shadow, compared against version ${String(answer.basedOn)}\n` };
    },
  },
  {
    path: ['policy', 'shadow', 'report'],
    routes: ['GET /policies/sets/{set}/candidate/report'],
    spec: { summary: 'How the candidate decided beside the live set: totals, differences, examples.', args: [SET] },
    async run(ctx) {
      const r = (await ctx.client.call('GET', `${candidatePath(ctx)}/report`)).body as Record<string, unknown> & { differences: Record<string, unknown>[]; examples: Record<string, unknown>[] };
      const head = fields({ set: r.set, candidate: r.candidate, basedOn: r.basedOn, liveVersion: r.liveVersion, stale: r.stale, compared: r.compared, differing: r.differing, failed: r.failed, unkeyed: r.unkeyed, firstAt: r.firstAt, lastAt: r.lastAt });
      const diffs = table(r.differences, [['count', (d) => d.count], ['live', (d) => d.live], ['candidate', (d) => d.candidate], ['route', (d) => d.route], ['candidate route', (d) => d.candidateRoute]], '(no differences)');
      const examples = table(r.examples, [['at', (e) => when(e.at)], ['principal', (e) => e.principalId], ['request', (e) => `${String(e.method)} ${String(e.path)}`], ['live', (e) => `${(e.live as { outcome: string; code: string }).outcome} (${(e.live as { code: string }).code})`], ['candidate', (e) => `${(e.candidate as { outcome: string }).outcome} (${(e.candidate as { code: string }).code})`]], '(no examples)');
      return { json: r, human: `${head}\ndifferences:\n${diffs}\nexamples:\n${examples}` };
    },
  },
  {
    path: ['policy', 'shadow', 'promote'],
    routes: ['GET /policies/sets/{set}/candidate', 'POST /policies/sets/{set}/candidate/promote'],
    spec: { summary: 'Make the candidate the live set, if nobody wrote the set since it was compared (412 otherwise).', args: [SET] },
    async run(ctx) {
      const c = await current(ctx);
      const answer = (await ctx.client.call('POST', `${candidatePath(ctx)}/promote`, { headers: { 'if-match': `"${c.basedOn}"` } })).body as Record<string, unknown>;
      return { json: answer, human: `promoted candidate ${c.candidate}: ${ctx.args.set} is at version ${String(answer.version)}\n` };
    },
  },
  {
    path: ['policy', 'shadow', 'discard'],
    routes: ['GET /policies/sets/{set}/candidate', 'DELETE /policies/sets/{set}/candidate'],
    spec: { summary: 'Discard the candidate and its report.', args: [SET] },
    async run(ctx) {
      const c = await current(ctx);
      await ctx.client.call('DELETE', candidatePath(ctx), { headers: { 'if-match': `"${c.candidate}"` } });
      return { human: `discarded candidate ${c.candidate} of ${ctx.args.set}\n` };
    },
  },
];

import { UsageError } from '../args';
import { ApiError, EXIT } from '../client';
import { type Command, type Context, fields, listing, more, PAGE_OPTIONS, readJson, seg, str, table, when } from '../command';

/**
 * A set's history and its server-side checks (DESIGN §9): `gatehouse policy history`,
 * `version`, `rollback` and `check`. `check` runs the tests on the server, with the role
 * catalog as stored; `gatehouse policy test` runs them offline from a file.
 */

const SET = { name: 'set', description: 'the policy set (e.g. default)' };
const VERSION_RE = /^\d{1,15}$/;

type Summary = { routes: Record<'added' | 'removed' | 'changed', string[]>; gate: boolean; tests: Record<'added' | 'removed' | 'changed', string[]>; truncated: boolean };

/** One line for a change summary: `+2 -1 ~1 routes, gate, +1 test`. */
function changes(s: Summary | null | undefined): string {
  if (!s) return '-';
  const part = (l: Record<'added' | 'removed' | 'changed', string[]>, what: string) => {
    const n = [l.added.length ? `+${l.added.length}` : '', l.removed.length ? `-${l.removed.length}` : '', l.changed.length ? `~${l.changed.length}` : ''].filter(Boolean);
    return n.length ? `${n.join(' ')} ${what}` : '';
  };
  const out = [part(s.routes, 'routes'), s.gate ? 'gate' : '', part(s.tests, 'tests')].filter(Boolean).join(', ');
  return `${out || 'no change'}${s.truncated ? ' (more)' : ''}`;
}

function version(v: string | undefined, what: string): string {
  if (v === undefined || !VERSION_RE.test(v)) throw new UsageError(`${what} must be a version number, as \`gatehouse policy history\` lists them`);
  return v;
}

/** A test run's failures, one line each. */
function failureLines(results: { name: string; passed: boolean; expected: { decision: string; code?: string }; actual: { decision: string; code: string; route?: string } }[]): string[] {
  return results
    .filter((r) => !r.passed)
    .map((r) => `FAIL ${r.name}: expected ${r.expected.decision}${r.expected.code ? ` (${r.expected.code})` : ''}, got ${r.actual.decision} (${r.actual.code}${r.actual.route ? ` at ${r.actual.route}` : ''})`);
}

/** The candidate of `check --file`: a set document (what `GET /policies/sets/{set}` answers is one), its read-only fields dropped. */
async function candidate(ctx: Context, file: string): Promise<Record<string, unknown>> {
  const doc = await readJson(ctx, file);
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError('the file must hold a JSON object: { "routes"?, "gate"?, "tests"? }');
  // A pulled policy file is a candidate too: its set, version, warnings and test-only roles are not part of it (the server tests with the stored roles).
  const { set: _s, version: _v, warnings: _w, roles: _r, ...body } = doc as Record<string, unknown>;
  return body;
}

export const POLICY_HISTORY_COMMANDS: Command[] = [
  {
    path: ['policy', 'history'],
    routes: ['GET /policies/sets/{set}/versions'],
    spec: { summary: 'List a policy set\'s versions, newest first: who wrote each, when, how, and what changed.', args: [SET], options: PAGE_OPTIONS, examples: ['gatehouse policy history default'] },
    async run(ctx) {
      const page = await listing(ctx, `/policies/sets/${seg(ctx.args.set)}/versions`);
      const rows = table(
        page.items as Record<string, unknown>[],
        [
          ['version', (v) => `${String(v.version)}${v.current ? '*' : ''}`],
          ['action', (v) => (v.restoredFrom ? `rollback to ${String(v.restoredFrom)}` : v.action)],
          ['when', (v) => when(v.updatedAt)],
          ['by', (v) => v.updatedBy],
          ['changes', (v) => changes(v.summary as Summary | null)],
        ],
        '(no history)',
      );
      return { json: page, human: rows + more(page) };
    },
  },
  {
    path: ['policy', 'version'],
    routes: ['GET /policies/sets/{set}/versions/{version}'],
    spec: { summary: 'Show one version of a policy set whole: routes, gate and tests.', args: [SET, { name: 'version', description: 'the version number' }], examples: ['gatehouse policy version default 12'] },
    async run(ctx) {
      const v = (await ctx.client.call('GET', `/policies/sets/${seg(ctx.args.set)}/versions/${seg(version(ctx.args.version, 'the version'))}`)).body as Record<string, unknown>;
      const head = fields({ ...v, changes: changes(v.summary as Summary | null), tests: (v.tests as unknown[]).length }, ['version', 'action', 'updatedAt', 'updatedBy', 'restoredFrom', 'current', 'changes', 'gate', 'tests']);
      const routes = table(v.routes as Record<string, unknown>[], [['route', (r) => r.route], ['permission', (r) => `${String(r.resource)}:${String(r.action)}`], ['org', (r) => r.org], ['public', (r) => (r.public ? 'yes' : '')], ['condition', (r) => r.condition]], '(no routes)');
      return { json: v, human: `${head}\n${routes}` };
    },
  },
  {
    path: ['policy', 'rollback'],
    routes: ['GET /policies/sets/{set}', 'POST /policies/sets/{set}/rollback'],
    spec: {
      summary: 'Write an old version\'s routes and gate back as a new version (the current tests must pass).',
      args: [SET, { name: 'version', description: 'the version to restore' }],
      options: { 'if-version': { type: 'string', value: '<v>', description: 'only if the set is still at this version (default: the version read just before)' } },
      examples: ['gatehouse policy rollback default 12', 'gatehouse policy rollback default 12 --if-version 15'],
    },
    async run(ctx) {
      const target = version(ctx.args.version, 'the version to restore');
      const given = str(ctx.values['if-version']);
      const current = given !== undefined ? version(given, '--if-version') : String(((await ctx.client.call('GET', `/policies/sets/${seg(ctx.args.set)}`)).body as { version: unknown }).version);
      const s = (await ctx.client.call('POST', `/policies/sets/${seg(ctx.args.set)}/rollback`, { body: { version: target }, headers: { 'if-match': `"${current}"` } })).body as Record<string, unknown>;
      return { json: s, human: `restored the routes and gate of version ${target} of ${ctx.args.set ?? ''} as version ${String(s.version)} (was ${current})\n` };
    },
  },
  {
    path: ['policy', 'check'],
    routes: ['POST /policies/sets/{set}/test'],
    spec: {
      summary: 'Run a set\'s tests on the server, against the stored version or a candidate file; exits 5 when one fails.',
      args: [SET],
      options: { file: { type: 'string', value: '<file>', description: 'a candidate { routes?, gate?, tests? } as JSON (what is left out is the stored one); - reads standard input' } },
      examples: ['gatehouse policy check default', 'gatehouse policy check default --file candidate.json'],
    },
    async run(ctx) {
      const file = str(ctx.values.file);
      const body = file !== undefined ? await candidate(ctx, file) : {};
      const run = (await ctx.client.call('POST', `/policies/sets/${seg(ctx.args.set)}/test`, { body })).body as { version: string; passed: number; failed: number; results: Parameters<typeof failureLines>[0] };
      if (run.failed > 0) {
        // Failing tests are an answer (200), but scripts and CI need a non-zero exit: the
        // one `policy test` and a refused write use.
        return { json: run, human: `${run.failed} of ${run.passed + run.failed} policy test(s) fail${file !== undefined ? ' for the candidate' : ''} against ${ctx.args.set ?? ''} (version ${run.version}):\n${failureLines(run.results).join('\n')}\n`, exit: EXIT.testsFailed };
      }
      return { json: run, human: `${run.passed} policy test(s) pass against ${ctx.args.set ?? ''}${file !== undefined ? ` with ${file === '-' ? 'the candidate' : file}` : ''} (version ${run.version})\n` };
    },
  },
];

/**
 * `gatehouse`: the admin API from the command line. See docs/cli.md.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadExpressionEngine } from '../core/policy/expression';
import { helpText, type OptionSpec, parseCommand, shown, UsageError } from './args';
import { ApiClient, ApiError, ConfigProblem, EXIT, Unreachable } from './client';
import type { Command, Context } from './command';
import { INVITATION_COMMANDS } from './commands/invitations';
import { MISC_COMMANDS } from './commands/misc';
import { ORG_COMMANDS } from './commands/orgs';
import { POLICY_COMMANDS } from './commands/policy';
import { POLICY_HISTORY_COMMANDS } from './commands/policy-history';
import { POLICY_SHADOW_COMMANDS } from './commands/policy-shadow';
import { ROLE_COMMANDS } from './commands/roles';
import { TOKEN_COMMANDS } from './commands/tokens';
import { isEntryPoint } from './entry';

/** Every command, in the order help lists them. */
export const COMMANDS: Command[] = [...MISC_COMMANDS.filter((c) => c.path[0] === 'me'), ...TOKEN_COMMANDS, ...INVITATION_COMMANDS, ...ORG_COMMANDS, ...ROLE_COMMANDS, ...MISC_COMMANDS.filter((c) => c.path[0] !== 'me'), ...POLICY_COMMANDS, ...POLICY_HISTORY_COMMANDS, ...POLICY_SHADOW_COMMANDS];

export const DEFAULT_URL = 'http://127.0.0.1:3000';

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string', value: '<url>', description: `the admin API (default: GATEHOUSE_URL, else ${DEFAULT_URL})` },
  'token-file': { type: 'string', value: '<file>', description: 'read the credential from this file (- reads standard input); default: GATEHOUSE_TOKEN' },
  token: { type: 'string', value: '<credential>', description: 'the credential itself (visible to other local users in the process list: prefer GATEHOUSE_TOKEN or --token-file)' },
  json: { type: 'boolean', description: 'print the API\'s JSON answer (nothing for an empty answer); errors as JSON on stderr' },
  field: { type: 'string', multiple: true, value: '<path>', description: 'print one field of the JSON answer, e.g. token or items.0.id; one line each' },
  debug: { type: 'boolean', description: 'print each request and answer status on stderr (never the credential)' },
};

const GROUPS: Record<string, string> = {
  tokens: 'personal, org and site tokens',
  invitations: 'invitations into orgs',
  orgs: 'organizations',
  members: 'members of an org',
  'site-roles': 'site roles of a user',
  roles: 'custom roles',
  policy: 'policy sets, API bindings, tests, history, rollback and shadow mode',
};

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  stdin?: () => Promise<string>;
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function overview(): string {
  const lines = ['usage: gatehouse <command> [arguments] [options]', '', 'The gatehouse admin API from the command line (docs/cli.md).', '', 'commands:'];
  const width = Math.max(...COMMANDS.map((c) => c.path.join(' ').length));
  for (const c of COMMANDS) lines.push(`  ${c.path.join(' ').padEnd(width)}  ${c.spec.summary}`);
  lines.push('', 'global options:');
  for (const [n, o] of Object.entries(GLOBAL_OPTIONS)) lines.push(`  --${n}${o.type === 'string' ? ` ${o.value}` : ''}`.padEnd(28) + `  ${o.description}`);
  lines.push('', 'environment: GATEHOUSE_URL (the admin API), GATEHOUSE_TOKEN (the credential: a gatehouse token or a JWT)');
  lines.push(`exit codes: ${EXIT.ok} ok, ${EXIT.refused} the API refused or failed the request (policy diff: the file differs), ${EXIT.usage} usage or configuration error, ${EXIT.unreachable} the API could not be reached, ${EXIT.conflict} version conflict (412: changed since read), ${EXIT.testsFailed} policy tests failed`);
  lines.push('', 'gatehouse <command> --help shows a command\'s arguments and options.');
  return `${lines.join('\n')}\n`;
}

function groupHelp(group: string): string {
  const cmds = COMMANDS.filter((c) => c.path[0] === group);
  const width = Math.max(...cmds.map((c) => c.path.join(' ').length));
  return `usage: gatehouse ${group} <command> [arguments] [options]\n\n${GROUPS[group] ?? group}:\n${cmds.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.spec.summary}`).join('\n')}\n\ngatehouse ${group} <command> --help shows its options.\n`;
}

/** The command words of argv (skipping global options and their values) and the rest. */
export function splitCommand(argv: string[]): { words: string[]; rest: string[] } {
  const words: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('-')) {
      rest.push(a);
      const name = a.replace(/^--?/, '');
      if (GLOBAL_OPTIONS[name]?.type === 'string' && !a.includes('=') && i + 1 < argv.length) rest.push(argv[++i]!);
      continue;
    }
    const candidate = [...words, a];
    if (words.length < 3 && COMMANDS.some((c) => candidate.every((w, j) => c.path[j] === w))) words.push(a);
    else rest.push(a);
  }
  return { words, rest };
}

/** Finds the command for argv; throws UsageError (with the help to show) otherwise. */
export function resolveCommand(argv: string[]): { command?: Command; group?: string; rest: string[] } {
  const { words, rest } = splitCommand(argv);
  const command = COMMANDS.find((c) => c.path.length === words.length && c.path.every((w, i) => w === words[i]));
  if (command) return { command, rest };
  if (words.length === 1 && GROUPS[words[0]!]) return { group: words[0]!, rest };
  return { rest };
}

/** One dotted path (`items.0.id`) of a JSON value. */
function pick(json: unknown, path: string): unknown {
  let v: unknown = json;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v as object, k)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs the CLI; resolves with the exit code. Output goes through `io` only. */
export async function run(argv: string[], io: Io): Promise<number> {
  const json = argv.includes('--json');
  const fail = (code: number, message: string, extra: Record<string, unknown> = {}, jsonMessage = message) => {
    io.stderr(json ? `${JSON.stringify({ error: { ...extra, message: jsonMessage } })}\n` : `gatehouse: ${message}\n`);
    return code;
  };
  if (argv.length === 0) {
    io.stderr(overview());
    return EXIT.usage;
  }
  if (argv[0] === '--version' || argv[0] === 'version') {
    io.stdout(`${version()}\n`);
    return EXIT.ok;
  }
  const { command, group, rest } = resolveCommand(argv);
  if (!command) {
    const asksHelp = argv.includes('--help') || argv.includes('-h') || argv[0] === 'help';
    if (group) {
      if (asksHelp) return (io.stdout(groupHelp(group)), EXIT.ok);
      io.stderr(groupHelp(group));
      return EXIT.usage;
    }
    if (asksHelp && argv.filter((a) => !a.startsWith('-') && a !== 'help').length === 0) return (io.stdout(overview()), EXIT.ok);
    const unknown = argv.find((a) => !a.startsWith('-'));
    return fail(EXIT.usage, `unknown command ${unknown ? shown(unknown) : ''} (gatehouse --help lists them)`, { code: 'usage' });
  }
  const usage = `gatehouse ${command.path.join(' ')}`;
  const spec = { ...command.spec, usage, options: { ...command.spec.options, ...GLOBAL_OPTIONS } };
  let parsed;
  try {
    parsed = parseCommand(spec, rest);
  } catch (err) {
    if (err instanceof UsageError) return fail(EXIT.usage, `${err.message} (${usage} --help)`, { code: 'usage' });
    throw err;
  }
  if (parsed.help) {
    io.stdout(helpText({ ...command.spec, usage }, GLOBAL_OPTIONS));
    return EXIT.ok;
  }
  const v = parsed.values;
  const debug = v.debug ? (line: string) => io.stderr(`debug: ${line}\n`) : undefined;
  try {
    const tokenFile = typeof v['token-file'] === 'string' ? v['token-file'] : undefined;
    if (tokenFile !== undefined && typeof v.token === 'string') throw new UsageError('give --token or --token-file, not both');
    const stdin = io.stdin ?? readStdin;
    let credential = typeof v.token === 'string' ? v.token : io.env.GATEHOUSE_TOKEN;
    let source = typeof v.token === 'string' ? '--token' : 'GATEHOUSE_TOKEN';
    if (tokenFile !== undefined) {
      source = '--token-file';
      try {
        credential = (tokenFile === '-' ? await stdin() : readFileSync(tokenFile, 'utf8')).trim();
      } catch (err) {
        throw new ConfigProblem(`cannot read --token-file ${JSON.stringify(tokenFile)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
    const client = new ApiClient({
      baseUrl: typeof v.url === 'string' ? v.url : io.env.GATEHOUSE_URL || DEFAULT_URL,
      credential: credential?.trim() === '' ? undefined : credential,
      credentialSource: source,
      ...(io.fetch ? { fetch: io.fetch } : {}),
      ...(debug ? { debug } : {}),
    });
    const ctx: Context = { client, values: v, args: parsed.args, stdin, now: io.now ?? Date.now, sleep: io.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))) };
    // Commands validate policy files before sending them, so jexl is loaded first (core/policy/expression.ts).
    await loadExpressionEngine();
    const result = await command.run(ctx);
    const fieldsWanted = Array.isArray(v.field) ? v.field : [];
    if (fieldsWanted.length > 0) {
      const out: string[] = [];
      for (const f of fieldsWanted) {
        const picked = pick(result.json, f);
        if (picked === undefined) return fail(EXIT.refused, `the answer has no field ${JSON.stringify(f)}`, { code: 'no-such-field' });
        out.push(typeof picked === 'string' ? picked : JSON.stringify(picked));
      }
      io.stdout(`${out.join('\n')}\n`);
    } else if (json) {
      if (result.json !== undefined) io.stdout(`${JSON.stringify(result.json, null, 2)}\n`);
    } else io.stdout(result.human);
    return result.exit ?? EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) return fail(EXIT.usage, `${err.message} (${usage} --help)`, { code: 'usage' });
    if (err instanceof ConfigProblem) return fail(EXIT.usage, err.message, { code: 'config' });
    if (err instanceof Unreachable) return fail(EXIT.unreachable, `${err.message}: is the stack running (npm start), or GATEHOUSE_URL set?`, { code: 'unreachable' });
    if (err instanceof ApiError) {
      const hint = err.status === 401 ? ' (the credential was refused: missing, malformed, expired, revoked or unknown)' : '';
      // A stale If-Match is not a refusal to retry as is: the caller has to read again (or overwrite on purpose).
      const code = err.status === 412 ? EXIT.conflict : err.code === 'policy-tests-failed' ? EXIT.testsFailed : EXIT.refused;
      return fail(code, `${err.status} ${err.code}: ${err.message}${hint}`, { status: err.status, code: err.code, ...(err.details !== undefined ? { details: err.details } : {}) }, err.message);
    }
    return fail(EXIT.refused, `unexpected failure: ${(err as Error)?.name ?? 'Error'}`, { code: 'internal' });
  }
}

/** Runs with the process's arguments, streams and environment, then exits with the code. */
export async function main(argv = process.argv.slice(2)): Promise<never> {
  const code = await run(argv, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), env: process.env });
  // Let stdout drain before exiting (a pipe may still hold output).
  await new Promise<void>((r) => (process.stdout.writableNeedDrain ? process.stdout.once('drain', () => r()) : r()));
  process.exit(code);
}

if (isEntryPoint(import.meta.url)) void main();

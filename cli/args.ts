/**
 * The one command-line parser of gatehouse's tools (`gatehouse`, `npm run token`,
 * `npm run bootstrap-admin`): Node's own `util.parseArgs` in strict mode, so `--x=v`
 * and `--x v` both work, an option never swallows the next option as its value, and
 * unknown options are refused. This file adds what it lacks: help text generated from
 * the same declaration, required arguments, and one-line usage errors.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** May be given more than once (values collected in order). */
  multiple?: boolean;
  short?: string;
  /** Placeholder shown in help, e.g. `<orgId>`. */
  value?: string;
  description: string;
  /** Must be given. */
  required?: boolean;
}

export interface ArgSpec {
  name: string;
  description: string;
  optional?: boolean;
}

export interface CommandSpec {
  /** How it is invoked, e.g. `gatehouse tokens create` or `npm run token --`. */
  usage: string;
  summary: string;
  args?: ArgSpec[];
  options?: Record<string, OptionSpec>;
  /** Paragraphs printed after the options. */
  details?: string[];
  examples?: string[];
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: Values;
  args: Record<string, string | undefined>;
  help: boolean;
}

/** A problem with how a command was invoked: exit code 2, one line plus a pointer to `--help`. */
export class UsageError extends Error {
  constructor(message: string, readonly usage?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help' };

/** Never repeat back something that looks like a credential. */
export function shown(arg: string): string {
  return /^(gat_|eyJ)/.test(arg) || arg.length > 80 ? '(an argument that looks like a credential)' : JSON.stringify(arg);
}

function closest(name: string, candidates: string[]): string | undefined {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  const best = candidates.map((c) => [c, dist(name, c)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= Math.max(2, Math.floor(name.length / 3)) ? best[0] : undefined;
}

/** True when `--help`/`-h` appears before a `--` terminator. */
export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/**
 * Parses `argv` against `spec`: options (strict), then positional arguments in order.
 * `--help` anywhere wins over every other problem. Throws UsageError.
 */
export function parseCommand(spec: CommandSpec, argv: string[]): Parsed {
  const options = { ...spec.options, help: HELP };
  if (wantsHelp(argv)) return { values: {}, args: {}, help: true };
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) }])),
      strict: true,
      allowPositionals: true,
    }) as { values: Values; positionals: string[] };
  } catch (err) {
    throw new UsageError(describeParseError(err as Error & { code?: string }, Object.keys(options)), spec.usage);
  }
  for (const [name, o] of Object.entries(spec.options ?? {})) {
    const v = parsed.values[name];
    if (o.required && (v === undefined || (Array.isArray(v) && v.length === 0))) throw new UsageError(`--${name} is required`, spec.usage);
    if (o.type === 'string' && v !== undefined) for (const s of Array.isArray(v) ? v : [v as string]) if (s === '') throw new UsageError(`--${name} needs a value`, spec.usage);
  }
  const declared = spec.args ?? [];
  const args: Record<string, string | undefined> = {};
  declared.forEach((a, i) => {
    const v = parsed.positionals[i];
    if (v === undefined && !a.optional) throw new UsageError(`missing <${a.name}>`, spec.usage);
    args[a.name] = v;
  });
  if (parsed.positionals.length > declared.length) throw new UsageError(`unexpected argument ${shown(parsed.positionals[declared.length]!)}`, spec.usage);
  return { values: parsed.values, args, help: false };
}

function describeParseError(err: Error & { code?: string }, known: string[]): string {
  const m = /'(-{1,2}[^' ]+)/.exec(err.message);
  const opt = m?.[1] ?? '';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const near = opt.startsWith('--') ? closest(opt.slice(2), known) : undefined;
      return `unknown option ${opt.length > 40 || /^-{1,2}(gat_|eyJ)/.test(opt) ? '(not shown)' : opt}${near ? ` (did you mean --${near}?)` : ''}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/ambiguous|missing/.test(err.message)) return `${opt} needs a value (to give one that starts with a dash, write ${opt}=-value)`;
      if (/does not take an argument/.test(err.message)) return `${opt} takes no value`;
      return `invalid value for ${opt}`;
    default:
      return 'invalid arguments';
  }
}

function optionLine(name: string, o: OptionSpec): [string, string] {
  const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
  return [flag, `${o.description}${o.multiple ? ' (repeatable)' : ''}${o.required ? ' (required)' : ''}`];
}

function columns(rows: [string, string][]): string[] {
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)));
  return rows.map(([l, r]) => (l.length > width ? `  ${l}\n  ${' '.repeat(width)}  ${r}` : `  ${l.padEnd(width)}  ${r}`));
}

/** `usage: <how> <required options> <args> [options]`. */
export function usageLine(spec: CommandSpec): string {
  const required = Object.entries(spec.options ?? {}).filter(([, o]) => o.required).map(([n, o]) => `--${n} ${o.value ?? '<value>'}`);
  const args = (spec.args ?? []).map((a) => (a.optional ? `[<${a.name}>]` : `<${a.name}>`));
  const optional = Object.values(spec.options ?? {}).some((o) => !o.required);
  return `usage: ${[spec.usage, ...required, ...args, ...(optional ? ['[options]'] : [])].join(' ')}`;
}

/** The help text of a command, generated from its declaration. */
export function helpText(spec: CommandSpec, globals?: Record<string, OptionSpec>): string {
  const lines = [usageLine(spec), '', spec.summary];
  if (spec.args?.length) lines.push('', 'arguments:', ...columns(spec.args.map((a) => [`<${a.name}>`, a.description])));
  const opts = Object.entries({ ...spec.options, help: HELP });
  lines.push('', 'options:', ...columns(opts.map(([n, o]) => optionLine(n, o))));
  if (globals) lines.push('', 'global options:', ...columns(Object.entries(globals).map(([n, o]) => optionLine(n, o))));
  for (const d of spec.details ?? []) lines.push('', d);
  if (spec.examples?.length) lines.push('', 'examples:', ...spec.examples.map((e) => `  ${e}`));
  return `${lines.join('\n')}\n`;
}

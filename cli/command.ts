import { readFileSync } from 'node:fs';
import type { CommandSpec, OptionSpec, Values } from './args';
import { UsageError } from './args';
import type { ApiClient } from './client';

/** What a command answers: the API's JSON (for `--json` and `--field`) and how a person reads it. */
export interface Result {
  /** The answer's JSON; undefined for an empty answer (204). */
  json?: unknown;
  /** Text for people (stdout). */
  human: string;
  /** The exit code when it is not 0: a command that answered but found a difference or a failure (`policy diff`, `policy test`). */
  exit?: number;
}

export interface Context {
  client: ApiClient;
  values: Values;
  args: Record<string, string | undefined>;
  /** Reads standard input (for `-` as a file name). */
  stdin: () => Promise<string>;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

/** One CLI command: its words, its declaration (help is generated from it), the admin routes it calls. */
export interface Command {
  path: string[];
  spec: Omit<CommandSpec, 'usage'>;
  /** The admin API routes (`METHOD /path`) this command calls. */
  routes: string[];
  run(ctx: Context): Promise<Result>;
}

/** A path segment from user input. */
export const seg = (v: string | undefined) => encodeURIComponent(v ?? '');

export const str = (v: Values[string]): string | undefined => (typeof v === 'string' ? v : undefined);
export const list = (v: Values[string]): string[] => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []);

/** An integer option within bounds, or undefined when absent. */
export function intOption(values: Values, name: string, min: number, max: number): number | undefined {
  const v = str(values[name]);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name} must be an integer ${min}..${max}`);
  return Number(v);
}

/** Options every listing takes. */
export const PAGE_OPTIONS: Record<string, OptionSpec> = {
  limit: { type: 'string', value: '<n>', description: 'items per page, 1..100 (default 50)' },
  cursor: { type: 'string', value: '<cursor>', description: 'continue from a previous page\'s nextCursor' },
  all: { type: 'boolean', description: 'follow nextCursor and print every page' },
};

/** GETs a listing: one page, or every page with `--all`. */
export async function listing(ctx: Context, path: string, query: Record<string, string | undefined> = {}): Promise<{ items: unknown[]; nextCursor?: string }> {
  const limit = intOption(ctx.values, 'limit', 1, 100);
  let cursor = str(ctx.values.cursor);
  const items: unknown[] = [];
  for (;;) {
    const page = (await ctx.client.call('GET', path, { query: { ...query, ...(limit ? { limit: String(limit) } : {}), ...(cursor ? { cursor } : {}) } })).body as { items?: unknown[]; nextCursor?: string };
    items.push(...(page?.items ?? []));
    cursor = page?.nextCursor;
    if (!ctx.values.all || !cursor) return cursor ? { items, nextCursor: cursor } : { items };
  }
}

/** Reads a file, or standard input for `-`. */
export async function readInput(ctx: Context, file: string): Promise<string> {
  if (file === '-') return ctx.stdin();
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${JSON.stringify(file)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** How a file argument is named in messages: `standard input` for `-`. */
export const fileName = (file: string): string => (file === '-' ? 'standard input' : JSON.stringify(file));

/** Reads a file (or standard input for `-`) as JSON; a usage error names it when it cannot be read or is not JSON. */
export async function readJson(ctx: Context, file: string): Promise<unknown> {
  const text = await readInput(ctx, file);
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${fileName(file)} is not JSON`);
  }
}

/** Epoch seconds as a UTC timestamp. */
export function when(v: unknown): string {
  return typeof v === 'number' ? new Date(v * 1000).toISOString().replace('.000Z', 'Z') : v === null || v === undefined ? '-' : String(v);
}

/** A plain-text table. */
export function table(rows: Record<string, unknown>[], columns: [string, (r: Record<string, unknown>) => unknown][], empty = '(none)'): string {
  if (rows.length === 0) return `${empty}\n`;
  const cells = rows.map((r) => columns.map(([, f]) => {
    const v = f(r);
    return v === null || v === undefined ? '-' : Array.isArray(v) ? v.join(',') || '-' : String(v);
  }));
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  return `${[line(columns.map(([h]) => h.toUpperCase())), ...cells.map(line)].join('\n')}\n`;
}

/** `key: value` lines. */
export function fields(obj: Record<string, unknown>, order?: string[]): string {
  const keys = order ?? Object.keys(obj);
  const width = Math.max(...keys.map((k) => k.length));
  return `${keys.filter((k) => obj[k] !== undefined).map((k) => {
    const v = obj[k];
    const text = /At$|^expiresAt$/.test(k) ? when(v) : v === null ? '-' : Array.isArray(v) ? (v.length ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : '-') : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return `${`${k}:`.padEnd(width + 1)} ${text}`;
  }).join('\n')}\n`;
}

/** A listing's footer: how to get the next page. */
export function more(page: { nextCursor?: string }): string {
  return page.nextCursor ? `(more: --cursor ${page.nextCursor}, or --all)\n` : '';
}

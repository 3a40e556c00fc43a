/**
 * Small finite automata over method-ARN tails (`GET/orgs/acme/items/x`), for proving
 * what an IAM answer covers. Two kinds of language are built here:
 * - IAM resource patterns: `*` is any run of characters (`/` included), `?` one character;
 * - route languages: a literal, `{param}` (one path segment: one or more characters but
 *   `/`), `{proxy+}` (one or more segments).
 * `witness` decides whether strings lie in all of some languages and none of others, and
 * returns the shortest such string: the compiler proves statements with it, and tests
 * print it when a proof fails.
 *
 * The alphabet is every character but `%` and NUL: no language here holds a string with
 * one. A path holding an escape is not decided as its raw text reads (the route table
 * decodes escapes), so IAM answers deny such paths by an explicit statement instead.
 */

/** What a transition reads: one character, any character but `/` (`seg`), or any character (`any`). */
export type Symbol = string | 'seg' | 'any';

/** A nondeterministic automaton without empty moves. */
export interface Nfa {
  /** Transitions by state: `[symbol, target]`; a one-character string is that character. */
  readonly edges: ReadonlyArray<ReadonlyArray<readonly [Symbol, number]>>;
  readonly start: number;
  readonly accept: ReadonlySet<number>;
}

/** One part of a route language. */
export type PathPart = { lit: string } | { seg: true } | { segs: true };

class Builder {
  readonly edges: [Symbol, number][][] = [[]];
  cur = 0;
  add(from: number, symbol: Symbol, to: number): void {
    this.edges[from]!.push([symbol, to]);
  }
  state(): number {
    this.edges.push([]);
    return this.edges.length - 1;
  }
  /** Reads `symbol` into a new state. */
  step(symbol: Symbol): void {
    const next = this.state();
    this.add(this.cur, symbol, next);
    this.cur = next;
  }
  done(): Nfa {
    return { edges: this.edges, start: 0, accept: new Set([this.cur]) };
  }
}

/** The strings an IAM resource pattern (the part after `<apiId>/<stage>/`) matches. */
export function patternNfa(pattern: string): Nfa {
  const b = new Builder();
  for (const ch of pattern) {
    if (ch === '*') b.add(b.cur, 'any', b.cur);
    else b.step(ch === '?' ? 'any' : ch);
  }
  return b.done();
}

/** The strings a sequence of route parts matches. */
export function pathNfa(parts: readonly PathPart[]): Nfa {
  const b = new Builder();
  for (const part of parts) {
    if ('lit' in part) for (const ch of part.lit) b.step(ch);
    else if ('seg' in part) {
      b.step('seg');
      b.add(b.cur, 'seg', b.cur);
    } else {
      // One segment, then any number of "/segment".
      b.step('seg');
      const segment = b.cur;
      b.add(segment, 'seg', segment);
      const slash = b.state();
      b.add(segment, '/', slash);
      b.add(slash, 'seg', segment);
    }
  }
  return b.done();
}

/** Every well-formed tail: `METHOD/`, or `METHOD/` and non-empty segments (no `//`, no trailing `/`). */
export const WELL_FORMED: Nfa = (() => {
  const b = new Builder();
  b.step('seg');
  b.add(b.cur, 'seg', b.cur);
  b.step('/');
  const root = b.cur;
  b.step('seg');
  const segment = b.cur;
  b.add(segment, 'seg', segment);
  b.add(segment, '/', root);
  // Accept after `METHOD/` (the root path) and after any segment.
  return { edges: b.edges, start: 0, accept: new Set([root, segment]) };
})();

/** Stands for "a character no transition names but `seg`/`any`" during a search. */
const OTHER = '\u0000other';

/** Outside the alphabet: a percent escape (decoded by the route table, read as written by IAM) and NUL. */
const OUTSIDE = new Set(['%', '\u0000']);

function moves(nfa: Nfa, states: readonly number[], ch: string): number[] {
  const out = new Set<number>();
  if (OUTSIDE.has(ch)) return [];
  for (const s of states) {
    for (const [symbol, to] of nfa.edges[s]!) {
      if (symbol === 'any' || (symbol === 'seg' && ch !== '/') || symbol === ch) out.add(to);
    }
  }
  return [...out].sort((a, b) => a - b);
}

/** Explored product states a search may visit before it gives up (answers are then treated as unproven). */
export const MAX_SEARCH_STATES = 20_000;

/** The search gave up: the languages were too large to compare within {@link MAX_SEARCH_STATES}. */
export class SearchTooLarge extends Error {}

/**
 * The shortest string in every language of `all` and in none of `none`, or undefined
 * when there is none. Exact (a breadth-first search of the product automaton, the
 * languages of `none` determinised on the fly). Throws {@link SearchTooLarge} past
 * {@link MAX_SEARCH_STATES} product states.
 */
export function witness(all: readonly Nfa[], none: readonly Nfa[] = []): string | undefined {
  if (all.length === 0) throw new TypeError('witness needs at least one language to draw from');
  const machines = [...all, ...none];
  const start = machines.map((m) => [m.start]);
  const key = (sets: number[][]) => sets.map((s) => s.join(',')).join('|');
  const seen = new Map<string, { from: string | undefined; ch: string }>([[key(start), { from: undefined, ch: '' }]]);
  let frontier = [start];
  while (frontier.length > 0) {
    const next: number[][][] = [];
    for (const sets of frontier) {
      const here = key(sets);
      if (accepts(machines, all.length, sets)) return spell(seen, here);
      // The characters worth trying: those some transition names, `/`, and one stand-in for all others.
      const chars = new Set<string>(['/', OTHER]);
      for (let i = 0; i < machines.length; i++) {
        for (const s of sets[i]!) for (const [symbol] of machines[i]!.edges[s]!) if (symbol.length === 1) chars.add(symbol);
      }
      for (const ch of chars) {
        const after = machines.map((m, i) => moves(m, sets[i]!, ch));
        if (after.slice(0, all.length).some((s) => s.length === 0)) continue;
        const k = key(after);
        if (seen.has(k)) continue;
        if (seen.size >= MAX_SEARCH_STATES) throw new SearchTooLarge('language comparison too large');
        seen.set(k, { from: here, ch });
        next.push(after);
      }
    }
    frontier = next;
  }
  return undefined;
}

function accepts(machines: readonly Nfa[], positives: number, sets: readonly number[][]): boolean {
  for (let i = 0; i < machines.length; i++) {
    const hit = sets[i]!.some((s) => machines[i]!.accept.has(s));
    if (i < positives ? !hit : hit) return false;
  }
  return true;
}

function spell(seen: Map<string, { from: string | undefined; ch: string }>, end: string): string {
  let out = '';
  for (let k: string | undefined = end; k !== undefined; ) {
    const step: { from: string | undefined; ch: string } = seen.get(k)!;
    // A private-use character: no route literal or id can hold one.
    out = (step.ch === OTHER ? '\uE000' : step.ch) + out;
    k = step.from;
  }
  return out;
}

import type jexl from 'jexl';
import { LruCache } from '../cache/lru';
import { InvalidInput } from '../errors';
import { EXPRESSION_TRANSFORMS, expressionTransform } from './expression-transforms';

/**
 * Hardened `jexl` expressions (DESIGN §4). jexl is unmaintained and its sandbox has a
 * known gap: member access reaches `constructor`, and from there `Function`. So:
 * - an expression is validated on jexl's own syntax tree (never on its text) against an
 *   allow-list of node types, names, transforms and sizes, when it is written and
 *   again when a policy is loaded;
 * - the tree that was validated is the tree that runs: the compiled jexl expression is
 *   kept private, reachable only through {@link evaluateExpression};
 * - it runs with `evalSync` against a JSON copy of the context made of null-prototype
 *   objects, so no prototype chain is reachable even if validation missed something;
 * - only a result `=== true` allows; any error denies.
 */

/** What an expression may read. Header names are lower-cased; `now` is epoch seconds. */
export interface ExpressionContext {
  principal: {
    id: string;
    kind: string;
    email?: string;
    emailVerified?: boolean;
    groups?: string[];
    siteRoles: string[];
    /** orgId -> names of the principal's roles in that org. */
    orgs: Record<string, string[]>;
    claims?: Record<string, unknown>;
  };
  request: {
    method: string;
    path: string;
    pathParameters: Record<string, string>;
    query: Record<string, string>;
    /** Lower-cased names. */
    headers: Record<string, string>;
    sourceIp?: string;
  };
  resource: { type: string; action: string; orgId?: string; ownerId?: string };
  /** Epoch seconds. */
  now: number;
}

/** An expression that passed validation, and what it depends on. */
export interface ValidatedExpression {
  text: string;
  /**
   * Access paths read, rooted at `principal`, `request`, `resource` or `now`, each up to
   * its first non-literal step (`request.headers.x-forwarded-for`, `principal.orgs`);
   * sorted and unique. Bracket keys are joined with dots like names.
   */
  reads: readonly string[];
  /**
   * True when it reads request data other than the Authorization header. API Gateway
   * caches an authorizer answer per identity source (the Authorization header), so such
   * data is not in the cache key: the route needs an authorizer TTL of 0 (DESIGN §5).
   */
  readsUncachedRequestData: boolean;
  /** True when it reads `now`: a cached answer may outlive the truth by the TTL. */
  timeDependent: boolean;
  /**
   * True when its value is fixed by the principal and the method ARN: it reads neither
   * `now` nor request data other than the method, path and path parameters (which the
   * ARN holds). A repeated request may then get the answer already given to it.
   */
  fixedByRoute: boolean;
}

declare const compiledBrand: unique symbol;

/**
 * A validated expression, compiled once. Opaque: only {@link evaluateExpression} can
 * run it, and only on an object that {@link compileExpression} made (a look-alike
 * built by hand evaluates to false). Frozen, because it is shared through a cache.
 */
export interface CompiledExpression extends ValidatedExpression {
  readonly [compiledBrand]: true;
}

/** Longest expression text, in characters. */
export const MAX_EXPRESSION_LENGTH = 2000;
/**
 * Deepest nesting, counted two ways, each limited: brackets and parentheses in the text
 * (checked before parsing: jexl's parser is quadratic in them), and levels of the syntax
 * tree, where a member chain (`a.b[0].c`), a transform chain (`x|lower|trim`) or a run of
 * one operator (`a || b || c`) is one level, because none of them is nesting to a reader.
 */
export const MAX_EXPRESSION_DEPTH = 32;
/** Most syntax-tree nodes. */
export const MAX_EXPRESSION_NODES = 500;
/**
 * Most filters (`list[.field == x]`) nested inside one another. Each level multiplies
 * the work by the length of a list, which may come from a token's claims.
 */
export const MAX_FILTER_NESTING = 2;

/** The only names an expression may start from. */
const ROOTS: ReadonlySet<string> = new Set(['principal', 'request', 'resource', 'now']);
/** Never a member name, by dot or by bracket. Names starting with `__` are refused too. */
const BANNED_NAMES: ReadonlySet<string> = new Set(['constructor', '__proto__', 'prototype']);
/** The identity source: the one piece of the request that is in API Gateway's cache key. */
const CACHE_KEY_READ = 'request.headers.authorization';
const BINARY_OPERATORS: ReadonlySet<string> = new Set(['+', '-', '*', '/', '//', '%', '^', '==', '!=', '>', '>=', '<', '<=', '&&', '||', 'in']);
const UNARY_OPERATORS: ReadonlySet<string> = new Set(['!']);

type Engine = InstanceType<typeof jexl.Jexl>;
type Program = ReturnType<Engine['compile']>;

/**
 * A private jexl instance: its grammar holds only the allow-listed transforms and no
 * functions, and no other module can add to it. Each transform is also wrapped so an
 * unforeseen throw becomes `undefined` rather than an error.
 */
function createEngine(J: typeof jexl.Jexl): Engine {
  const engine = new J();
  for (const [name, transform] of Object.entries(EXPRESSION_TRANSFORMS)) {
    engine.addTransform(name, (...args: unknown[]) => {
      try {
        return transform.apply(args[0], ...args.slice(1));
      } catch {
        return undefined;
      }
    });
  }
  return engine;
}

/**
 * jexl is loaded when first needed, not with this module: in an authorizer's bundle it
 * is a file of its own, about 6 ms of a cold start (README, Benchmarks), and an API
 * whose policies hold no expression never needs it. The authorizer loads it before it
 * compiles a policy that holds an expression (core/authorizer/policy.ts), the admin API
 * before it handles a policy request, the CLI before its commands. Until then
 * validating or compiling throws a plain Error, never `invalid-expression` (the text is
 * not at fault), and a policy's condition that could not be compiled denies.
 */
let engine: Engine | undefined;
let loading: Promise<Engine> | undefined;

/** Loads jexl once per process; concurrent callers share the load, and a failed load can be tried again. */
export async function loadExpressionEngine(): Promise<void> {
  loading ??= import('jexl').then(
    (m) => createEngine(m.default.Jexl),
    (err: unknown) => {
      loading = undefined;
      throw err;
    },
  );
  engine = await loading;
}

function loadedEngine(): Engine {
  if (engine === undefined) throw new Error('the expression engine is not loaded (loadExpressionEngine)');
  return engine;
}

/** A syntax-tree node as jexl builds it. Read defensively: children may be null or missing. */
type Node = Record<string, unknown>;

/** The compiled jexl expression behind each CompiledExpression. */
const programs = new WeakMap<object, Program>();

function invalid(text: string, problem: string, extra: Record<string, unknown> = {}): never {
  throw new InvalidInput('invalid-expression', `invalid expression: ${problem}`, { expression: text.slice(0, 200), ...extra });
}

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && typeof (v as Node).type === 'string';
}

/** Approximate source for a node, for error messages: short, never deep. */
function show(node: unknown, budget = 8): string {
  const s = render(node, budget);
  return s.length > 80 ? `${s.slice(0, 79)}…` : s;
}

function render(node: unknown, budget: number): string {
  if (!isNode(node)) return '?';
  if (budget <= 0) return '…';
  const r = (n: unknown) => render(n, budget - 1);
  switch (node.type) {
    case 'Literal':
      return JSON.stringify(node.value) ?? '?';
    case 'Identifier':
      return node.from ? `${r(node.from)}.${String(node.value)}` : `${node.relative ? '.' : ''}${String(node.value)}`;
    case 'FilterExpression':
      return `${r(node.subject)}[${r(node.expr)}]`;
    case 'BinaryExpression':
      return `(${r(node.left)} ${String(node.operator)} ${r(node.right)})`;
    case 'UnaryExpression':
      return `${String(node.operator)}${r(node.right)}`;
    case 'ConditionalExpression':
      return `(${r(node.test)} ? ${node.consequent ? r(node.consequent) : ''} : ${r(node.alternate)})`;
    case 'ArrayLiteral':
      return `[${Array.isArray(node.value) ? node.value.map(r).join(', ') : ''}]`;
    case 'ObjectLiteral':
      return `{${Object.keys((node.value as object) ?? {}).map((k) => `${k}: …`).join(', ')}}`;
    case 'FunctionCall': {
      const args = Array.isArray(node.args) ? node.args : [];
      if (node.pool === 'transforms') return `${r(args[0])}|${String(node.name)}${args.length > 1 ? `(${args.slice(1).map(r).join(', ')})` : ''}`;
      return `${node.name === undefined ? '…' : String(node.name)}(${args.map(r).join(', ')})`;
    }
    default:
      return '?';
  }
}

/** The index of the quote closing the string literal opened at `start`, or -1. */
function stringEnd(text: string, start: number): number {
  // jexl's lexer: /"(?:\\"|[^"])*"/, greedy. It ends at the first quote not preceded by a
  // backslash, or failing that at the last one that is (`"a\\"` is a string ending in `\`).
  const quote = text[start];
  let lastEscaped = -1;
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] !== quote) continue;
    if (text[i - 1] !== '\\') return i;
    lastEscaped = i;
  }
  return lastEscaped;
}

/**
 * Bracket nesting in the text, outside string literals: the deepest level, and whether
 * every bracket closes (jexl quietly accepts `(a == 1` with no closing parenthesis).
 * A resource limit and a balance check, not a security check: those are on the tree.
 */
function brackets(text: string): { depth: number; balanced: boolean } {
  let level = 0;
  let depth = 0;
  let balanced = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'") {
      const end = stringEnd(text, i);
      if (end < 0) break; // unterminated: jexl's lexer refuses it
      i = end;
    } else if (c === '(' || c === '[' || c === '{') {
      depth = Math.max(depth, ++level);
    } else if ((c === ')' || c === ']' || c === '}') && --level < 0) {
      balanced = false;
    }
  }
  return { depth, balanced: balanced && level <= 0 };
}

/** A member name: refused when it leads to a prototype or to `Function`. */
function checkName(text: string, name: string, node: unknown): void {
  if (BANNED_NAMES.has(name) || name.startsWith('__')) invalid(text, `access to ${JSON.stringify(name)} is not allowed (at ${show(node)})`, { at: show(node) });
}

/** jexl's parse and lex errors, reworded where that helps, with a position where known. */
function syntaxError(text: string, err: unknown): never {
  // Only jexl's own messages are worth passing on; anything else (a TypeError from deep
  // inside its parser on input like `1 + ()`) just means the text is malformed.
  const message = err instanceof Error && !(err instanceof TypeError) ? err.message : '';
  // jexl looks names up in its plain-object grammar, so a name inherited from
  // Object.prototype (`constructor`, `__proto__`, `toString`...) lexes as no token at all.
  const inherited = /^Token (\S+) \(undefined\) unexpected/.exec(message);
  if (inherited) {
    const name = inherited[1] as string;
    if (BANNED_NAMES.has(name) || name.startsWith('__')) invalid(text, `access to ${JSON.stringify(name)} is not allowed`);
    invalid(text, `${JSON.stringify(name)} is a built-in name and cannot be used`);
  }
  // "Token X (type) unexpected in expression: <text up to X>", "Unexpected end of expression: <text>"
  const parsed = /^([\s\S]*?)(?: in expression|(?<=^Unexpected end of expression)): ([\s\S]*)$/.exec(message);
  const what = (parsed ? (parsed[1] as string) : message ? message.slice(0, 120) : 'malformed expression').replace(/\s+/g, ' ');
  const prefix = parsed?.[2];
  const lead = text.length - text.trimStart().length;
  const position = prefix !== undefined && text.slice(lead).startsWith(prefix) ? lead + prefix.trimEnd().length : undefined;
  invalid(text, `syntax error${position !== undefined ? ` near character ${position}` : ''}: ${what}`, position !== undefined ? { position } : {});
}

interface Walk {
  readonly text: string;
  nodes: number;
  readonly reads: Set<string>;
}

interface Scope {
  /** Syntax-tree nesting so far. */
  depth: number;
  /** Relative filters this node is inside. */
  filters: number;
  /** Inside a relative filter: the paths its elements come from (relative names are read there). */
  relative?: readonly string[];
}

const deeper = (s: Scope): Scope => ({ ...s, depth: s.depth + 1 });
const join = (paths: readonly string[], name: string): string[] => paths.map((p) => `${p}.${name}`);

/**
 * Walks the tree and enforces the allow-list. Returns the access paths the node's value
 * is read from; a node that is not itself the base of a longer access (`chained`)
 * records them as reads.
 */
function visit(w: Walk, node: unknown, scope: Scope, chained: boolean): string[] {
  if (++w.nodes > MAX_EXPRESSION_NODES) invalid(w.text, `more than ${MAX_EXPRESSION_NODES} syntax nodes`);
  if (scope.depth > MAX_EXPRESSION_DEPTH) invalid(w.text, `nested deeper than ${MAX_EXPRESSION_DEPTH} levels (at ${show(node)})`, { at: show(node) });
  if (!isNode(node)) invalid(w.text, 'incomplete expression');
  let paths: string[];
  switch (node.type) {
    case 'Literal': {
      const t = typeof node.value;
      if (t !== 'string' && t !== 'number' && t !== 'boolean') invalid(w.text, 'unsupported literal');
      return [];
    }

    case 'Identifier': {
      const name = node.value;
      if (typeof name !== 'string') invalid(w.text, 'malformed name');
      checkName(w.text, name, node);
      if (node.from) {
        paths = join(visit(w, node.from, scope, true), name);
      } else if (node.relative) {
        if (!scope.relative) invalid(w.text, `relative name .${name} outside a filter (start from principal, request, resource or now)`, { at: show(node) });
        // jexl evaluates a relative name against the root context when the element is
        // falsy (0, "", false, null), so `.request.method` may read `request.method`.
        paths = [...join(scope.relative, name), ...(ROOTS.has(name) ? [name] : [])];
      } else {
        if (!ROOTS.has(name)) invalid(w.text, `unknown name ${JSON.stringify(name)} (start from principal, request, resource or now)`, { at: name });
        paths = [name];
      }
      break;
    }

    case 'FilterExpression': {
      const base = visit(w, node.subject, scope, true);
      const expr = node.expr;
      if (node.relative === true) {
        if (scope.filters >= MAX_FILTER_NESTING) invalid(w.text, `filters nested more than ${MAX_FILTER_NESTING} deep (at ${show(node)})`, { at: show(node) });
        visit(w, expr, { depth: scope.depth + 1, filters: scope.filters + 1, relative: base }, false);
        paths = base;
      } else {
        // Bracket access: the key must be known when the expression is written, so it can
        // be checked like a dotted name. `[true]`/`[false]` (jexl's keep-or-drop) is refused too.
        if (!isNode(expr) || expr.type !== 'Literal' || (typeof expr.value !== 'string' && typeof expr.value !== 'number')) {
          invalid(w.text, `bracket access needs a literal string or number key (at ${show(node)})`, { at: show(node) });
        }
        if (++w.nodes > MAX_EXPRESSION_NODES) invalid(w.text, `more than ${MAX_EXPRESSION_NODES} syntax nodes`);
        const key = String(expr.value);
        checkName(w.text, key, node);
        paths = join(base, key);
      }
      break;
    }

    case 'BinaryExpression': {
      const op = node.operator;
      if (typeof op !== 'string' || !BINARY_OPERATORS.has(op)) invalid(w.text, `unsupported operator ${String(op)}`);
      const left = node.left;
      // A run of one operator (`a || b || c`) leans left in jexl's tree: one level, not many.
      const run = isNode(left) && left.type === 'BinaryExpression' && left.operator === op;
      visit(w, left, run ? scope : deeper(scope), false);
      visit(w, node.right, deeper(scope), false);
      return [];
    }

    case 'UnaryExpression':
      if (typeof node.operator !== 'string' || !UNARY_OPERATORS.has(node.operator)) invalid(w.text, `unsupported operator ${String(node.operator)}`);
      visit(w, node.right, deeper(scope), false);
      return [];

    case 'ConditionalExpression':
      visit(w, node.test, deeper(scope), false);
      // `a ?: b` has no consequent (jexl then yields `a`); a missing alternate is a truncated expression.
      if (node.consequent !== null && node.consequent !== undefined) visit(w, node.consequent, deeper(scope), false);
      if (node.alternate === undefined || node.alternate === null) invalid(w.text, `conditional without an alternative (at ${show(node)})`, { at: show(node) });
      visit(w, node.alternate, deeper(scope), false);
      return [];

    case 'ArrayLiteral':
      if (!Array.isArray(node.value)) invalid(w.text, 'malformed list');
      for (const element of node.value) visit(w, element, deeper(scope), false);
      return [];

    case 'FunctionCall': {
      const args = Array.isArray(node.args) ? node.args : [];
      if (node.pool !== 'transforms') {
        invalid(w.text, typeof node.name === 'string' ? `function calls are not allowed (at ${show(node)})` : 'calling a value is not allowed', { at: show(node) });
      }
      const transform = expressionTransform(node.name);
      if (!transform) {
        invalid(w.text, `unknown transform ${JSON.stringify(node.name)} (allowed: ${Object.keys(EXPRESSION_TRANSFORMS).join(', ')})`, { at: show(node) });
      }
      if (args.length - 1 !== transform.arity) {
        invalid(w.text, `${String(node.name)} takes ${transform.arity} argument${transform.arity === 1 ? '' : 's'}, got ${Math.max(0, args.length - 1)} (usage: ${transform.usage})`, { at: show(node) });
      }
      // The piped value continues the chain (`x|lower|trim` is one level); arguments nest.
      visit(w, args[0], scope, false);
      for (const arg of args.slice(1)) visit(w, arg, deeper(scope), false);
      return [];
    }

    case 'ObjectLiteral':
      invalid(w.text, `object literals are not allowed (at ${show(node)})`, { at: show(node) });
    default:
      invalid(w.text, `unsupported syntax ${JSON.stringify(node.type)}`);
  }
  if (!chained) for (const p of paths) w.reads.add(p);
  return paths;
}

const underRequest = (path: string) => path === 'request' || path.startsWith('request.');
/** What of the request the method ARN holds. */
const ROUTE_READS = ['request.method', 'request.path', 'request.pathParameters'];
const isCacheKey = (path: string) => path === CACHE_KEY_READ || path.startsWith(`${CACHE_KEY_READ}.`);

/** Validates and compiles; the program returned is the one whose tree was checked. */
function analyse(text: unknown): { validated: ValidatedExpression; program: Program } {
  if (typeof text !== 'string') invalid('', `must be a string, not ${text === null ? 'null' : Array.isArray(text) ? 'a list' : typeof text}`);
  if (text.trim() === '') invalid(text, 'must not be empty');
  if (text.length > MAX_EXPRESSION_LENGTH) invalid(text, `longer than ${MAX_EXPRESSION_LENGTH} characters (${text.length})`);
  // Before parsing: jexl's parser takes time quadratic in nesting.
  const nesting = brackets(text);
  if (nesting.depth > MAX_EXPRESSION_DEPTH) invalid(text, `brackets or parentheses nested deeper than ${MAX_EXPRESSION_DEPTH}`);
  if (!nesting.balanced) invalid(text, 'syntax error: unbalanced brackets or parentheses');
  const jexlEngine = loadedEngine();
  let program: Program;
  let ast: unknown;
  try {
    program = jexlEngine.compile(text);
    ast = program._getAst();
  } catch (err) {
    syntaxError(text, err);
  }
  if (ast === null || ast === undefined) invalid(text, 'must not be empty');
  const w: Walk = { text, nodes: 0, reads: new Set() };
  visit(w, ast, { depth: 0, filters: 0 }, false);
  const reads = [...w.reads].sort();
  const timeDependent = reads.some((r) => r === 'now' || r.startsWith('now.'));
  return {
    program,
    validated: {
      text,
      reads,
      readsUncachedRequestData: reads.some((r) => underRequest(r) && !isCacheKey(r)),
      timeDependent,
      fixedByRoute: !timeDependent && reads.every((r) => !underRequest(r) || ROUTE_READS.some((p) => r === p || r.startsWith(`${p}.`))),
    },
  };
}

/**
 * Validates an expression on its syntax tree: a non-empty string of at most
 * {@link MAX_EXPRESSION_LENGTH} characters, nesting and size within
 * {@link MAX_EXPRESSION_DEPTH} and {@link MAX_EXPRESSION_NODES}; only literals, names
 * from `principal`/`request`/`resource`/`now`, dotted access, bracket access with a
 * literal key, operators, conditionals, list literals, filters and allow-listed
 * transforms; never `constructor`, `__proto__`, `prototype` or a `__` name; no object
 * literals, no function calls.
 * @throws InvalidInput `invalid-expression` (400) naming the problem, and where it is
 *   when that is known.
 */
export function validateExpression(text: unknown): ValidatedExpression {
  return analyse(text).validated;
}

/** Distinct texts kept compiled; the least recently used is dropped beyond this. */
const CACHE_ENTRIES = 1000;
/** Compilation is deterministic: an entry only ages out to bound memory for dead policies. */
const CACHE_TTL_MS = 24 * 3600 * 1000;
const cache = new LruCache<string, CompiledExpression>({ maxEntries: CACHE_ENTRIES });

/**
 * Validates and compiles, once per text: repeated calls with the same text return the
 * same (frozen) object from a bounded cache.
 * @throws InvalidInput `invalid-expression`, as {@link validateExpression}.
 */
export function compileExpression(text: string): CompiledExpression {
  const hit = typeof text === 'string' ? cache.get(text) : undefined;
  if (hit) return hit;
  const { validated, program } = analyse(text);
  const compiled = Object.freeze({ ...validated, reads: Object.freeze([...validated.reads]) }) as CompiledExpression;
  programs.set(compiled, program);
  cache.set(validated.text, compiled, CACHE_TTL_MS);
  return compiled;
}

/** The deepest nesting a context may have: JSON claims nest, a cycle never ends. */
const MAX_CONTEXT_DEPTH = 64;

/**
 * A copy of `value` as plain data, what a JSON round trip would give, with objects that
 * have no prototype (arrays stay arrays): nothing jexl reads reaches a prototype, a
 * function or an object of ours. Strings, booleans and finite numbers are kept (other
 * numbers become null); functions, symbols and undefined are left out (null in arrays);
 * a bigint or a nesting deeper than MAX_CONTEXT_DEPTH (a cycle) throws, and evaluation
 * then denies. Own keys are copied as data, `__proto__` included.
 */
function isolate(value: unknown, depth = 0): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      throw new TypeError('a bigint is not data');
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value === null) return null;
  if (depth >= MAX_CONTEXT_DEPTH) throw new TypeError('the context nests too deeply');
  if (Array.isArray(value)) return value.map((v: unknown) => isolate(v, depth + 1) ?? null);
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    const v = isolate((value as Record<string, unknown>)[key], depth + 1);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/**
 * Evaluates a compiled expression against (a null-prototype JSON copy of) `context`.
 * `value` is true only when the result is exactly `true` ("true", 1, a list or an object
 * are false). Never throws: any error gives `{ value: false, error }` with a short message.
 */
export function evaluateExpression(compiled: CompiledExpression, context: ExpressionContext): { value: boolean; error?: string } {
  const program = typeof compiled === 'object' && compiled !== null ? programs.get(compiled) : undefined;
  if (!program) return { value: false, error: 'not a compiled expression' };
  try {
    const result: unknown = program.evalSync(isolate(context) as Record<string, unknown>);
    return { value: result === true };
  } catch (err) {
    const message = err instanceof Error && typeof err.message === 'string' ? err.message : 'evaluation failed';
    return { value: false, error: message.slice(0, 200) };
  }
}

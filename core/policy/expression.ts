import jexl from 'jexl';
import { LruCache } from '../cache/lru';
import { InvalidInput } from '../errors';

/**
 * Hardened `jexl` expressions (DESIGN §4). jexl is unmaintained and its sandbox has a
 * known gap (member access reaches `constructor`), so every expression is validated on
 * its syntax tree before it is stored and again when it is loaded, and evaluated with
 * `evalSync` against a JSON-cloned, null-prototype context. Only a result `=== true` allows.
 */

/** What an expression may read. */
export interface ExpressionContext {
  principal: {
    id: string;
    kind: string;
    email?: string;
    emailVerified?: boolean;
    groups?: string[];
    siteRoles: string[];
    orgs: Record<string, string[]>;
    claims?: Record<string, unknown>;
  };
  request: {
    method: string;
    path: string;
    pathParameters: Record<string, string>;
    query: Record<string, string>;
    headers: Record<string, string>;
    sourceIp?: string;
  };
  resource: { type: string; action: string; orgId?: string; ownerId?: string };
  now: number;
}

export interface ValidatedExpression {
  text: string;
  /** Access paths read, rooted at `principal`, `request`, `resource` or `now` (sorted, unique). */
  reads: string[];
  /** True when it reads request data other than the Authorization header (not in API Gateway's cache key). */
  readsUncachedRequestData: boolean;
  /** True when it reads `now`: a cached result may outlive the truth. */
  timeDependent: boolean;
}

export interface CompiledExpression extends ValidatedExpression {
  evaluate(context: unknown): unknown;
}

export const MAX_EXPRESSION_LENGTH = 2000;
export const MAX_EXPRESSION_DEPTH = 32;
export const MAX_EXPRESSION_NODES = 500;
const ROOTS = new Set(['principal', 'request', 'resource', 'now']);
const BANNED = new Set(['constructor', '__proto__', 'prototype']);
const CACHE_KEY_READ = 'request.headers.authorization';

type Ast = { type: string; [k: string]: unknown };

const str = (v: unknown): v is string => typeof v === 'string';

/** The allow-listed transforms. Each tolerates any input: wrong types give undefined/false, never a throw. */
const TRANSFORMS: Record<string, (...args: unknown[]) => unknown> = {
  lower: (v) => (str(v) ? v.toLowerCase() : undefined),
  upper: (v) => (str(v) ? v.toUpperCase() : undefined),
  trim: (v) => (str(v) ? v.trim() : undefined),
  length: (v) => (str(v) || Array.isArray(v) ? v.length : undefined),
  startsWith: (v, p) => str(v) && str(p) && v.startsWith(p),
  endsWith: (v, s) => str(v) && str(s) && v.endsWith(s),
  includes: (v, x) => (str(v) ? str(x) && v.includes(x) : Array.isArray(v) ? v.some((e) => e === x) : false),
  split: (v, sep) => (str(v) && str(sep) && sep.length > 0 ? v.split(sep).slice(0, 100) : undefined),
};

const engine = new jexl.Jexl();
engine.addTransforms(TRANSFORMS);

function invalid(text: string, message: string): never {
  throw new InvalidInput('invalid-expression', `invalid expression: ${message}`, { expression: text.slice(0, 200) });
}

function checkName(text: string, name: unknown): void {
  if (typeof name !== 'string') invalid(text, 'non-string member name');
  if (BANNED.has(name) || name.startsWith('__')) invalid(text, `access to ${JSON.stringify(name)} is not allowed`);
}

interface Walk {
  text: string;
  nodes: number;
  reads: Set<string>;
}

/** Walks the tree, enforcing the allow-list; returns the access path of chain nodes. */
function visit(w: Walk, node: Ast, depth: number, chainInner: boolean, inFilter: boolean): string | undefined {
  if (++w.nodes > MAX_EXPRESSION_NODES) invalid(w.text, `more than ${MAX_EXPRESSION_NODES} nodes`);
  if (depth > MAX_EXPRESSION_DEPTH) invalid(w.text, `nested deeper than ${MAX_EXPRESSION_DEPTH}`);
  if (!node || typeof node !== 'object') invalid(w.text, 'malformed syntax tree');
  let path: string | undefined;
  switch (node.type) {
    case 'Literal': {
      const v = node.value;
      if (v !== null && !['string', 'number', 'boolean'].includes(typeof v)) invalid(w.text, 'unsupported literal');
      return undefined;
    }
    case 'Identifier': {
      checkName(w.text, node.value);
      if (node.from) {
        const base = visit(w, node.from as Ast, depth + 1, true, inFilter);
        path = base === undefined ? undefined : `${base}.${node.value as string}`;
      } else if (node.relative) {
        if (!inFilter) invalid(w.text, 'relative identifier outside a filter');
        path = undefined;
      } else {
        if (!ROOTS.has(node.value as string)) invalid(w.text, `unknown name ${JSON.stringify(node.value)} (use principal, request, resource or now)`);
        path = node.value as string;
      }
      break;
    }
    case 'FilterExpression': {
      const base = visit(w, node.subject as Ast, depth + 1, true, inFilter);
      const expr = node.expr as Ast;
      if (node.relative) {
        visit(w, expr, depth + 1, false, true);
        path = base;
      } else {
        // Bracket access: only with a literal key, so the key is known when written.
        if (!expr || expr.type !== 'Literal' || !['string', 'number'].includes(typeof expr.value)) {
          invalid(w.text, 'bracket access needs a literal string or number key');
        }
        checkName(w.text, String(expr.value));
        w.nodes++;
        path = base === undefined ? undefined : `${base}.${String(expr.value)}`;
      }
      break;
    }
    case 'BinaryExpression':
      visit(w, node.left as Ast, depth + 1, false, inFilter);
      visit(w, node.right as Ast, depth + 1, false, inFilter);
      return undefined;
    case 'UnaryExpression':
      visit(w, node.right as Ast, depth + 1, false, inFilter);
      return undefined;
    case 'ConditionalExpression':
      visit(w, node.test as Ast, depth + 1, false, inFilter);
      if (node.consequent) visit(w, node.consequent as Ast, depth + 1, false, inFilter);
      visit(w, node.alternate as Ast, depth + 1, false, inFilter);
      return undefined;
    case 'ArrayLiteral':
      for (const el of (node.value as Ast[]) ?? []) visit(w, el, depth + 1, false, inFilter);
      return undefined;
    case 'FunctionCall': {
      if (node.pool !== 'transforms') invalid(w.text, `function calls are not allowed (${String(node.name)})`);
      if (!str(node.name) || !Object.prototype.hasOwnProperty.call(TRANSFORMS, node.name)) {
        invalid(w.text, `unknown transform ${JSON.stringify(node.name)} (allowed: ${Object.keys(TRANSFORMS).join(', ')})`);
      }
      for (const a of (node.args as Ast[]) ?? []) visit(w, a, depth + 1, false, inFilter);
      return undefined;
    }
    case 'ObjectLiteral':
      invalid(w.text, 'object literals are not allowed');
    // eslint-disable-next-line no-fallthrough
    default:
      invalid(w.text, `unsupported syntax ${JSON.stringify(node.type)}`);
  }
  if (!chainInner && path !== undefined) w.reads.add(path);
  return path;
}

function parse(text: unknown): { text: string; expr: ReturnType<typeof engine.compile>; validated: ValidatedExpression } {
  if (typeof text !== 'string') invalid(String(text).slice(0, 40), 'must be a string');
  if (text.trim() === '') invalid(text, 'must not be empty');
  if (text.length > MAX_EXPRESSION_LENGTH) invalid(text, `longer than ${MAX_EXPRESSION_LENGTH} characters`);
  let expr: ReturnType<typeof engine.compile>;
  let ast: Ast;
  try {
    expr = engine.compile(text);
    ast = (expr as unknown as { _getAst(): Ast })._getAst();
  } catch (err) {
    invalid(text, `syntax error: ${String((err as Error)?.message ?? err).slice(0, 200)}`);
  }
  if (!ast) invalid(text, 'empty expression');
  const w: Walk = { text, nodes: 0, reads: new Set() };
  visit(w, ast, 0, false, false);
  const reads = [...w.reads].sort();
  return {
    text,
    expr,
    validated: {
      text,
      reads,
      readsUncachedRequestData: reads.some((r) => (r === 'request' || r.startsWith('request.')) && r !== CACHE_KEY_READ),
      timeDependent: reads.includes('now'),
    },
  };
}

/**
 * Validates an expression's syntax tree: length, depth, node count, allow-listed
 * syntax and transforms, no `constructor`/`__proto__`/`prototype`, bracket access
 * only with literal keys, no object literals or function calls. Throws a 400
 * `invalid-expression` naming the problem.
 */
export function validateExpression(text: unknown): ValidatedExpression {
  return parse(text).validated;
}

const compiled = new LruCache<string, CompiledExpression>({ maxEntries: 2000 });
const FOREVER = 365 * 24 * 3600 * 1000;

/** Validates and compiles once per text (cached), so loading the same policy again costs nothing. */
export function compileExpression(text: string): CompiledExpression {
  const hit = compiled.get(text);
  if (hit) return hit;
  const p = parse(text);
  const c: CompiledExpression = { ...p.validated, evaluate: (ctx) => p.expr.evalSync(ctx as Record<string, unknown>) };
  compiled.set(text, c, FOREVER);
  return c;
}

/** Deep copy of JSON data into null-prototype objects: nothing on a prototype chain is reachable. */
function sanitize(value: unknown, depth = 0): unknown {
  if (depth > 20) return undefined;
  if (Array.isArray(value)) return value.map((v) => sanitize(v, depth + 1));
  if (value && typeof value === 'object') {
    const out = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) out[k] = sanitize(v, depth + 1);
    return out;
  }
  return value;
}

/** Evaluates; only `=== true` is true. Any error is false, with a short message for the explanation. */
export function evaluateExpression(expr: CompiledExpression, context: ExpressionContext): { value: boolean; error?: string } {
  try {
    const safe = sanitize(JSON.parse(JSON.stringify(context)));
    const result = expr.evaluate(safe);
    return { value: result === true };
  } catch (err) {
    return { value: false, error: String((err as Error)?.message ?? 'evaluation failed').slice(0, 200) };
  }
}

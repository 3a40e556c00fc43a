/**
 * The transforms a policy expression may use (`value|name(args)`, DESIGN §4). The list
 * is deliberately small. Every transform is total: whatever jexl hands it (an object, a
 * function value read off a string, a number where a string belongs), it returns
 * `undefined` for a conversion or `false` for a test, and never throws. Nothing here
 * calls a method on a value it has not first checked to be a string or an array.
 */

/** One allow-listed transform. */
export interface ExpressionTransform {
  /** Number of arguments after the piped value, checked when the expression is written. */
  readonly arity: number;
  /** How it is written, for error messages. */
  readonly usage: string;
  /** The implementation: total, never throws. */
  readonly apply: (value: unknown, ...args: unknown[]) => unknown;
}

/** `split` returns at most this many parts (the rest of the string is dropped). */
export const MAX_SPLIT_PARTS = 100;

const isString = (v: unknown): v is string => typeof v === 'string';

const transforms: Record<string, ExpressionTransform> = {
  lower: { arity: 0, usage: 'text|lower', apply: (v) => (isString(v) ? v.toLowerCase() : undefined) },
  upper: { arity: 0, usage: 'text|upper', apply: (v) => (isString(v) ? v.toUpperCase() : undefined) },
  trim: { arity: 0, usage: 'text|trim', apply: (v) => (isString(v) ? v.trim() : undefined) },
  length: {
    arity: 0,
    usage: 'text|length or list|length',
    apply: (v) => (isString(v) || Array.isArray(v) ? v.length : undefined),
  },
  startsWith: {
    arity: 1,
    usage: 'text|startsWith("prefix")',
    apply: (v, prefix) => isString(v) && isString(prefix) && v.startsWith(prefix),
  },
  endsWith: {
    arity: 1,
    usage: 'text|endsWith("suffix")',
    apply: (v, suffix) => isString(v) && isString(suffix) && v.endsWith(suffix),
  },
  includes: {
    arity: 1,
    usage: 'text|includes("part") or list|includes(item)',
    // A list is searched with `===` (like jexl's `in`), so only primitives can match.
    apply: (v, x) => (isString(v) ? isString(x) && v.includes(x) : Array.isArray(v) ? v.some((e) => e === x) : false),
  },
  split: {
    arity: 1,
    usage: 'text|split(",")',
    // String#split's own limit: a long header never becomes a long array.
    apply: (v, sep) => (isString(v) && isString(sep) && sep !== '' ? v.split(sep, MAX_SPLIT_PARTS) : undefined),
  },
};

/**
 * The allow-list, by name. A null-prototype, frozen map: `hasOwnProperty`, `constructor`
 * and friends are not transforms, and nothing can be added at run time.
 */
export const EXPRESSION_TRANSFORMS: Readonly<Record<string, ExpressionTransform>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, ExpressionTransform>, transforms),
);

/** The allow-listed transform called `name`, or undefined. */
export function expressionTransform(name: unknown): ExpressionTransform | undefined {
  return typeof name === 'string' && Object.hasOwn(EXPRESSION_TRANSFORMS, name) ? EXPRESSION_TRANSFORMS[name] : undefined;
}

import { Conflict, InvalidInput, type InvalidInputCode } from '../errors';
import { parseRouteKey, routeShape, validateRouteRules, type RouteRule } from './routes';

/** Policy set names: a lower-case slug (it is part of a DynamoDB key, so never a `#`). */
export const SET_NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;

/** API Gateway API ids (REST, HTTP and WebSocket alike): ten lower-case letters and digits. */
export const API_ID_RE = /^[a-z0-9]{10}$/;

/** Largest stored route table and test list (bytes of JSON): DynamoDB items stop at 400 KB. */
export const MAX_STORED_BYTES = 300_000;

/** Most tests a set may carry. */
export const MAX_TESTS = 200;

/** True for a well-formed set name. */
export function isSetName(name: unknown): name is string {
  return typeof name === 'string' && SET_NAME_RE.test(name);
}

/** The set name, or a 400 `invalid-set-name`. */
export function checkSetName(name: unknown): string {
  if (!isSetName(name)) throw new InvalidInput('invalid-set-name', 'set names are a lower-case letter, then lower-case letters, digits and dashes, at most 63 characters');
  return name;
}

/** The API id, or a 400 `invalid-api-id`. */
export function checkApiId(apiId: unknown): string {
  if (typeof apiId !== 'string' || !API_ID_RE.test(apiId)) throw new InvalidInput('invalid-api-id', 'an API Gateway API id is ten lower-case letters and digits');
  return apiId;
}

/** Refuses a value whose stored form would not fit in one DynamoDB item (400 `policy-too-large`). */
export function checkStoredSize(what: string, value: unknown): void {
  const bytes = Buffer.byteLength(JSON.stringify(value ?? null), 'utf8');
  if (bytes > MAX_STORED_BYTES) throw new InvalidInput('policy-too-large', `${what}: ${bytes} bytes stored, at most ${MAX_STORED_BYTES}`);
}

/**
 * A policy test (DESIGN §9): a principal, a request and the expected outcome. Stored with
 * the set and validated for shape only; running them is for later.
 */
export interface PolicyTest {
  name: string;
  principal: Record<string, unknown>;
  request: { method: string; path: string } & Record<string, unknown>;
  expect: 'allow' | 'deny' | { decision: 'allow' | 'deny'; code?: string };
}

const TEST_FIELDS = ['name', 'principal', 'request', 'expect'];

function plainObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Deepest nesting a test's principal or request may have. */
const MAX_TEST_DEPTH = 12;

/** Why a free-form JSON value is unfit to keep (too deep, a number JSON read as infinite), or undefined. */
function jsonProblem(v: unknown, depth: number): string | undefined {
  if (depth > MAX_TEST_DEPTH) return `nested deeper than ${MAX_TEST_DEPTH} levels`;
  if (typeof v === 'number' && !Number.isFinite(v)) return 'a number out of range';
  if (v && typeof v === 'object') {
    for (const x of Object.values(v as Record<string, unknown>)) {
      const p = jsonProblem(x, depth + 1);
      if (p) return p;
    }
  }
  return undefined;
}

/** Validates the shape of a set's tests (400 `invalid-tests` naming the test). */
export function validatePolicyTests(raw: unknown): PolicyTest[] {
  const bad = (where: string, message: string): never => {
    throw new InvalidInput('invalid-tests', `${where}: ${message}`, { field: where });
  };
  if (!Array.isArray(raw)) bad('tests', 'must be an array');
  const list = raw as unknown[];
  if (list.length > MAX_TESTS) bad('tests', `at most ${MAX_TESTS} tests`);
  const names = new Set<string>();
  return list.map((t, i) => {
    const where = `tests[${i}]`;
    if (!plainObject(t)) bad(where, 'must be an object');
    const test = t as Record<string, unknown>;
    const unknown = Object.keys(test).filter((k) => !TEST_FIELDS.includes(k));
    if (unknown.length > 0) bad(where, `unknown field(s): ${unknown.join(', ')}`);
    if (typeof test.name !== 'string' || test.name.trim() === '' || test.name.length > 200 || /[\u0000-\u001f\u007f]/.test(test.name)) bad(`${where}.name`, 'a name of 1..200 printable characters');
    const name = test.name as string;
    if (names.has(name)) bad(`${where}.name`, `duplicate test name ${JSON.stringify(name)}`);
    names.add(name);
    if (!plainObject(test.principal)) bad(`${where}.principal`, 'must be an object');
    if (!plainObject(test.request)) bad(`${where}.request`, 'must be an object');
    for (const field of ['principal', 'request']) {
      const problem = jsonProblem(test[field], 0);
      if (problem) bad(`${where}.${field}`, problem);
    }
    const request = test.request as Record<string, unknown>;
    if (typeof request.method !== 'string' || !/^[A-Z]{1,10}$/.test(request.method)) bad(`${where}.request.method`, 'an upper-case HTTP method');
    if (typeof request.path !== 'string' || !request.path.startsWith('/') || request.path.length > 2048) bad(`${where}.request.path`, 'a path starting with /');
    const expect = test.expect;
    const decision = (d: unknown) => d === 'allow' || d === 'deny';
    if (!decision(expect)) {
      if (!plainObject(expect) || !decision(expect.decision) || Object.keys(expect).some((k) => k !== 'decision' && k !== 'code') || (expect.code !== undefined && (typeof expect.code !== 'string' || !/^[a-z][a-z0-9-]{0,63}$/.test(expect.code)))) {
        bad(`${where}.expect`, '"allow", "deny", or { decision: "allow" | "deny", code?: "<reason code>" }');
      }
    }
    return { name, principal: test.principal as PolicyTest['principal'], request: request as PolicyTest['request'], expect: expect as PolicyTest['expect'] };
  });
}

/**
 * A per-rule edit of a route table (`PATCH /policies/sets/{set}`), keyed by route shape
 * (the route with parameter names erased, the same key that makes two rules duplicates):
 * `upsert` replaces the rule of the same shape where it stands, or appends a new one;
 * `remove` takes out the rule of each given route's shape, and a route that is not in the
 * table is a 409 `route-not-found` (the caller's picture of the table is wrong). The
 * result is validated as a whole table.
 */
export function applyRoutePatch(
  routes: readonly RouteRule[],
  patch: { upsert?: unknown; remove?: unknown },
  options: { validateCondition?: (text: string) => void } = {},
): RouteRule[] {
  const upsert = patch.upsert === undefined ? [] : renamed('upsert', () => validateRouteRules(patch.upsert, options));
  const removeRaw = patch.remove ?? [];
  if (!Array.isArray(removeRaw)) throw new InvalidInput('invalid-patch', 'remove must be an array of route keys', { field: 'remove' });
  if (removeRaw.length > 2000) throw new InvalidInput('invalid-patch', 'remove: at most 2000 routes', { field: 'remove' });
  const removed = new Map<string, string>();
  removeRaw.forEach((key, i) => {
    let shape: string;
    try {
      shape = routeShape(parseRouteKey(key as string));
    } catch (err) {
      throw new InvalidInput('invalid-route', `remove[${i}]: ${(err as Error).message}`, { field: `remove[${i}]` });
    }
    if (removed.has(shape)) throw new InvalidInput('invalid-patch', `remove[${i}]: ${String(key)} is named twice`, { field: `remove[${i}]` });
    removed.set(shape, String(key));
  });
  const upserted = new Map(upsert.map((r) => [routeShape(parseRouteKey(r.route)), r]));
  for (const [shape, key] of removed) {
    if (upserted.has(shape)) throw new InvalidInput('invalid-patch', `${key} is both upserted and removed`);
  }
  const present = new Set<string>();
  const out: RouteRule[] = [];
  for (const rule of routes) {
    const shape = routeShape(parseRouteKey(rule.route));
    present.add(shape);
    if (removed.has(shape)) continue;
    out.push(upserted.get(shape) ?? rule);
  }
  for (const [shape, key] of removed) {
    if (!present.has(shape)) throw new Conflict('route-not-found', `${key} is not in the route table`);
  }
  for (const [shape, rule] of upserted) if (!present.has(shape)) out.push(rule);
  // Stored rules were validated when written; the new ones just were: a structural check of the whole.
  return validateRouteRules(out);
}

/** Runs a table validation whose messages name `routes[i]` as `<field>[i]`. */
function renamed<T>(field: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InvalidInput) {
      throw new InvalidInput(err.code as InvalidInputCode, err.message.replace(/^routes(?=[[ ])/, field), err.details);
    }
    throw err;
  }
}

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { compilePolicy } from '../../core/authorizer/policy';
import { GatehouseError } from '../../core/errors';
import { validateExpression } from '../../core/policy/expression';
import { diffPolicies, type PolicyDiff } from '../../core/policy/policy-diff';
import { isSetName, validatePolicyTests, type PolicyTest } from '../../core/policy/policy-set';
import { runPolicyTests, validateTestRoles, type PolicyTestResult } from '../../core/policy/policy-tests';
import { validateRouteRules, type RouteRule } from '../../core/policy/routes';
import type { Role } from '../../core/rbac/types';
import { UsageError } from '../args';
import { ApiError, EXIT } from '../client';
import { type Command, type Context, list, listing, more, PAGE_OPTIONS, fileName, readInput, readJson, seg, str, table, when } from '../command';

/**
 * `gatehouse policy …`: policy sets and API bindings (DESIGN §6 "Policy sets", §9).
 *
 * A policy file is what `pull` writes and `diff`, `push` and `test` read:
 * `{ "set", "version", "routes", "gate", "tests", "roles"? }`. `version` is the version the
 * file was pulled (or last pushed) at, and `push` sends it as `If-Match`, so a push over
 * someone else's change is a 412 (exit 4) instead of a silent overwrite. `roles` are custom
 * roles for `policy test` only (the admin API keeps roles apart from policy sets); they are
 * never pushed.
 */

/** A policy file, validated. */
export interface PolicyFile {
  set?: string;
  version?: string;
  routes: RouteRule[];
  gate: string | null;
  tests: PolicyTest[];
  roles?: Role[];
}

const FILE_FIELDS = ['set', 'version', 'routes', 'gate', 'tests', 'roles'];
const RULE_ORDER: (keyof RouteRule)[] = ['route', 'resource', 'action', 'org', 'owner', 'condition', 'public'];
const TEST_ORDER: (keyof PolicyTest)[] = ['name', 'principal', 'request', 'expect'];

const validateCondition = (text: string) => void validateExpression(text);
const ordered = <T extends object>(o: T, keys: (keyof T)[]): T => Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as T;
const unquote = (etag: string | undefined) => (etag === undefined ? undefined : /^(?:W\/)?"([^"]*)"$/.exec(etag)?.[1] ?? etag);
/**
 * A version as the file records it: what an entity tag may hold (RFC 9110 §8.8.3), so it
 * can go back in If-Match. Stored sets are at counters ("3"); the built-in admin set is at
 * "builtin-<hash>", and a pulled copy of it must read back too.
 */
const FILE_VERSION_RE = /^[\x21\x23-\x7e]{1,64}$/;

/** A policy file's text: stable key order, 2-space indent, trailing newline (so a pulled file diffs well in git). */
export function formatPolicyFile(f: PolicyFile): string {
  const doc = {
    ...(f.set !== undefined ? { set: f.set } : {}),
    ...(f.version !== undefined ? { version: f.version } : {}),
    routes: f.routes.map((r) => ordered(r, RULE_ORDER)),
    gate: f.gate,
    tests: f.tests.map((t) => ordered(t, TEST_ORDER)),
    ...(f.roles !== undefined ? { roles: f.roles } : {}),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Parses and validates a policy file with the admin API's own rules; a bad file is a usage error naming the field. */
export function parsePolicyFile(text: string, name: string): PolicyFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new UsageError(`${name} is not JSON`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new UsageError(`${name} must hold a JSON object { set, version, routes, gate, tests, roles? }`);
  const f = raw as Record<string, unknown>;
  const unknown = Object.keys(f).filter((k) => !FILE_FIELDS.includes(k));
  if (unknown.length > 0) throw new UsageError(`${name}: unknown field(s) ${unknown.join(', ')} (a policy file has ${FILE_FIELDS.join(', ')})`);
  if (f.set !== undefined && !isSetName(f.set)) throw new UsageError(`${name}: set must be a policy set name (a lower-case letter, then lower-case letters, digits and dashes)`);
  if (f.version !== undefined && (typeof f.version !== 'string' || !FILE_VERSION_RE.test(f.version))) throw new UsageError(`${name}: version must be the version string pulled, e.g. "3"`);
  // A file without routes would push an empty table: say so rather than clear a set by omission.
  if (f.routes === undefined) throw new UsageError(`${name}: routes is missing (an empty table is "routes": [])`);
  if (f.gate !== undefined && f.gate !== null && typeof f.gate !== 'string') throw new UsageError(`${name}: gate must be a string or null`);
  try {
    const gate = (f.gate as string | null | undefined) ?? null;
    if (gate !== null) validateExpression(gate);
    return {
      ...(f.set !== undefined ? { set: f.set as string } : {}),
      ...(f.version !== undefined ? { version: f.version as string } : {}),
      routes: validateRouteRules(f.routes, { validateCondition }),
      gate,
      tests: f.tests === undefined ? [] : validatePolicyTests(f.tests),
      ...(f.roles !== undefined ? { roles: validateTestRoles(f.roles) } : {}),
    };
  } catch (err) {
    if (err instanceof GatehouseError) throw new UsageError(`${name}: ${err.code}: ${err.message}`);
    throw err;
  }
}

async function readPolicyFile(ctx: Context): Promise<{ file: string; policy: PolicyFile }> {
  const file = str(ctx.values.file)!;
  return { file, policy: parsePolicyFile(await readInput(ctx, file), fileName(file)) };
}

/**
 * The custom roles of a policy file about to be pulled over: they exist only in the file
 * (for `policy test`), so a fresh pull keeps them. A file that is not JSON, or has no
 * roles, has none to keep; roles that do not validate stop the pull (exit 2) rather than
 * vanish with it.
 */
function keptRoles(file: string): Role[] | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`cannot read ${JSON.stringify(file)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let old: unknown;
  try {
    old = JSON.parse(text);
  } catch {
    return undefined;
  }
  const raw = old && typeof old === 'object' && !Array.isArray(old) ? (old as { roles?: unknown }).roles : undefined;
  if (raw === undefined) return undefined;
  try {
    return validateTestRoles(raw);
  } catch (err) {
    if (err instanceof GatehouseError) throw new UsageError(`${JSON.stringify(file)} holds roles that would be lost (${err.code}: ${err.message}): fix them, or pull elsewhere`);
    throw err;
  }
}

/** Replaces a file in one step (a crash never leaves half a policy file). */
function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
}

/** The live set: its content and version (the ETag, else the body's `version`). */
async function readSet(ctx: Context, set: string): Promise<{ policy: PolicyFile; version: string; warnings: unknown[] }> {
  const answer = await ctx.client.call('GET', `/policies/sets/${seg(set)}`);
  const b = answer.body as { routes?: RouteRule[]; gate?: string | null; tests?: PolicyTest[]; version?: string; warnings?: unknown[] };
  const version = unquote(answer.etag) ?? b.version;
  if (!Array.isArray(b?.routes) || version === undefined) throw new ApiError(answer.status, 'unexpected-answer', `GET /policies/sets/${set} did not answer a policy set with a version`);
  return { policy: { set, version, routes: b.routes, gate: b.gate ?? null, tests: b.tests ?? [] }, version, warnings: b.warnings ?? [] };
}

const ruleText = (r: RouteRule) => `${r.route}  ${r.public ? 'public' : `${r.resource}:${r.action}`}${r.org ? ` org=${r.org}` : ''}${r.owner ? ` owner=${r.owner}` : ''}${r.condition ? ` if ${r.condition}` : ''}`;
const fieldText = (v: unknown) => (v === undefined ? '(none)' : JSON.stringify(v));

/** A diff as people read it: `+` what the file adds, `-` what it takes away, `~` what it changes. */
export function formatDiff(d: PolicyDiff): string {
  const lines: string[] = [];
  if (d.routes.added.length + d.routes.removed.length + d.routes.changed.length > 0) {
    lines.push('routes:');
    for (const r of d.routes.added) lines.push(`  + ${ruleText(r)}`);
    for (const r of d.routes.removed) lines.push(`  - ${ruleText(r)}`);
    for (const c of d.routes.changed) lines.push(`  ~ ${c.route}: ${c.fields.map((f) => `${f} ${fieldText(c.from[f as keyof RouteRule])} -> ${fieldText(c.to[f as keyof RouteRule])}`).join('; ')}`);
  }
  if (d.gate) lines.push(`gate: ${fieldText(d.gate.from ?? undefined)} -> ${fieldText(d.gate.to ?? undefined)}`);
  if (d.tests.added.length + d.tests.removed.length + d.tests.changed.length > 0) {
    lines.push('tests:');
    for (const t of d.tests.added) lines.push(`  + ${t}`);
    for (const t of d.tests.removed) lines.push(`  - ${t}`);
    for (const t of d.tests.changed) lines.push(`  ~ ${t}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

const expectedText = (e: PolicyTestResult['expected']) => `${e.decision}${e.code ? ` (${e.code})` : ''}`;

/** Test results as people read them: one line per test, failures with expected and actual. */
export function formatTestResults(results: PolicyTestResult[]): string {
  const lines = results.map((r) =>
    r.passed ? `ok    ${r.name}` : `FAIL  ${r.name}: expected ${expectedText(r.expected)}, got ${r.actual.decision} (${r.actual.code})${r.actual.route ? ` at ${r.actual.route}` : ''}`,
  );
  const failed = results.filter((r) => !r.passed).length;
  lines.push(`${results.length - failed} passed, ${failed} failed`);
  return `${lines.join('\n')}\n`;
}

/** A `--version` option: a version as read (it goes into If-Match), or undefined. */
function versionOption(ctx: Context): string | undefined {
  const v = str(ctx.values.version);
  if (v !== undefined && !FILE_VERSION_RE.test(v)) throw new UsageError('--version takes a version as read (the ETag without its quotes), e.g. 3');
  return v;
}

const SET_ARG = { name: 'set', description: 'the policy set, e.g. default or partner' };
const FILE_OPTION = (what: string) => ({ file: { type: 'string', value: '<file>', description: `${what} (- reads standard input)`, required: true } }) as const;

/** Reads a binding; undefined when the API is bound to no set. */
async function readBinding(ctx: Context, apiId: string): Promise<{ set: string; version: string } | undefined> {
  try {
    const answer = await ctx.client.call('GET', `/policies/apis/${seg(apiId)}`);
    const b = answer.body as { set: string; version?: string };
    return { set: b.set, version: unquote(answer.etag) ?? String(b.version) };
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && err.code === 'binding-not-found') return undefined;
    throw err;
  }
}

export const POLICY_COMMANDS: Command[] = [
  {
    path: ['policy', 'list'],
    routes: ['GET /policies/sets'],
    spec: { summary: 'List policy sets: the built-in admin (read-only) and default, then stored sets.', options: PAGE_OPTIONS, examples: ['gatehouse policy list'] },
    async run(ctx) {
      const page = await listing(ctx, '/policies/sets');
      const rows = table(page.items as Record<string, unknown>[], [['name', (s) => s.name], ['version', (s) => s.version], ['built-in', (s) => (s.builtIn ? 'yes' : 'no')], ['read-only', (s) => (s.readOnly ? 'yes' : 'no')], ['apis', (s) => s.bindings], ['updated', (s) => when(s.updatedAt)], ['by', (s) => s.updatedBy]]);
      return { json: page, human: rows + more(page) };
    },
  },
  {
    path: ['policy', 'bindings'],
    routes: ['GET /policies/apis'],
    spec: { summary: 'List API bindings: which API is decided by which set (unbound APIs use default).', options: PAGE_OPTIONS },
    async run(ctx) {
      const page = await listing(ctx, '/policies/apis');
      const rows = table(page.items as Record<string, unknown>[], [['api', (b) => b.apiId], ['set', (b) => b.set], ['version', (b) => b.version], ['updated', (b) => when(b.updatedAt)], ['by', (b) => b.updatedBy]]);
      return { json: page, human: rows + more(page) };
    },
  },
  {
    path: ['policy', 'pull'],
    routes: ['GET /policies/sets/{set}'],
    spec: {
      summary: 'Write a policy set to a file (or standard output), with the version it was read at.',
      args: [SET_ARG],
      options: { out: { type: 'string', value: '<file>', description: 'write here instead of standard output (replaced in one step; a "roles" array already in it is kept)' } },
      details: ['The file is { "set", "version", "routes", "gate", "tests" } with a stable key order, ready to edit, diff, test and push. Its version is what push sends as If-Match.'],
      examples: ['gatehouse policy pull default --out default.policy.json'],
    },
    async run(ctx) {
      const set = ctx.args.set!;
      const live = await readSet(ctx, set);
      const out = str(ctx.values.out);
      const roles = out !== undefined ? keptRoles(out) : undefined;
      const doc: PolicyFile = { ...live.policy, ...(roles ? { roles } : {}) };
      const text = formatPolicyFile(doc);
      const json = JSON.parse(text) as unknown;
      if (out === undefined) return { json, human: text };
      writeFileAtomic(out, text);
      return { json, human: `pulled policy set ${set} at version ${live.version} into ${out} (${doc.routes.length} routes, ${doc.tests.length} tests${roles ? `, kept ${roles.length} roles` : ''})\n` };
    },
  },
  {
    path: ['policy', 'diff'],
    routes: ['GET /policies/sets/{set}'],
    spec: {
      summary: 'Show what pushing a policy file would change in the live set; exit 1 when they differ (as diff(1)).',
      args: [SET_ARG],
      options: FILE_OPTION('the policy file'),
      details: [
        'Rules are compared by route (parameter names aside), tests by name; "+" is what the file adds, "-" what it removes, "~" what it changes. It also says when the live set is no longer at the version the file was pulled at (someone changed it since): a push would then be refused.',
        'Exit codes: 0 the same content, 1 they differ (or the API refused the request: then an error is on standard error), 2 usage, 3 unreachable.',
      ],
      examples: ['gatehouse policy diff default --file default.policy.json'],
    },
    async run(ctx) {
      const set = ctx.args.set!;
      const { file, policy } = await readPolicyFile(ctx);
      const live = await readSet(ctx, set);
      const d = diffPolicies(live.policy, policy);
      const stale = policy.version !== undefined && policy.version !== live.version;
      const head = `policy set ${set}: live version ${live.version}, ${fileName(file)} ${policy.version !== undefined ? `at version ${policy.version}` : 'has no version'}${stale ? ' (the set changed since the file was pulled)' : ''}\n`;
      const body = d.identical ? 'no differences\n' : formatDiff(d);
      return { json: { set, liveVersion: live.version, fileVersion: policy.version ?? null, changedSincePull: stale, ...d }, human: head + body, ...(d.identical ? {} : { exit: EXIT.refused }) };
    },
  },
  {
    path: ['policy', 'push'],
    routes: ['PUT /policies/sets/{set}'],
    spec: {
      summary: 'Replace a policy set with a file, only if nobody changed it since the file was pulled.',
      args: [SET_ARG],
      options: {
        ...FILE_OPTION('the policy file (as pull writes it)'),
        force: { type: 'boolean', description: 'overwrite whatever version is live (If-Match: *)' },
        create: { type: 'boolean', description: 'create a new set; refused if it exists (If-None-Match: *)' },
      },
      details: [
        'The push carries If-Match with the file\'s version. When the set changed since (someone else pushed), it is refused with exit code 4 and nothing is written: pull again and redo your edit (policy diff shows the difference), or push --force to overwrite on purpose.',
        'After a successful push the file\'s version (and set) is rewritten to the new version, so the next push from the same file works. The file\'s "roles" are for policy test and are not pushed. Warnings (e.g. condition-not-cacheable) are printed.',
      ],
      examples: ['gatehouse policy push default --file default.policy.json', 'gatehouse policy push partner --file partner.policy.json --create'],
    },
    async run(ctx) {
      const set = ctx.args.set!;
      const force = ctx.values.force === true;
      const create = ctx.values.create === true;
      if (force && create) throw new UsageError('give --force or --create, not both');
      const { file, policy } = await readPolicyFile(ctx);
      if (policy.set !== undefined && policy.set !== set && !force && !create) throw new UsageError(`${fileName(file)} was pulled from set ${policy.set}, not ${set}: push it to ${policy.set}, or copy it with --create (new set) or --force`);
      if (!force && !create && policy.version === undefined) throw new UsageError(`${fileName(file)} has no version: --create makes a new set, --force overwrites one`);
      const headers: Record<string, string> = create ? { 'if-none-match': '*' } : force ? { 'if-match': '*' } : { 'if-match': `"${policy.version!}"` };
      let answer;
      try {
        answer = await ctx.client.call('PUT', `/policies/sets/${seg(set)}`, { body: { routes: policy.routes, gate: policy.gate, tests: policy.tests }, headers });
      } catch (err) {
        if (err instanceof ApiError && err.status === 412) {
          const why = err.code === 'already-exists'
            ? `policy set ${set} already exists: pull it, or push --force to overwrite it`
            : `policy set ${set} changed since ${fileName(file)} was pulled at version ${String(policy.version)}; nothing was written. Pull it again and redo your edit (policy diff shows what changed), or push --force to overwrite it`;
          throw new ApiError(err.status, err.code, why, err.details);
        }
        throw err;
      }
      const b = answer.body as { routes?: RouteRule[]; gate?: string | null; tests?: PolicyTest[]; version?: string; warnings?: { route: string; code: string; message: string }[] };
      const version = unquote(answer.etag) ?? String(b.version);
      let note = '';
      if (file !== '-') {
        // The file becomes what is now live (as the API stored it), at the new version; its test roles stay.
        const stored = Array.isArray(b.routes) && Array.isArray(b.tests) ? { routes: b.routes, gate: b.gate ?? null, tests: b.tests } : {};
        writeFileAtomic(file, formatPolicyFile({ ...policy, ...stored, set, version }));
        note = `; ${file} now records version ${version}`;
      }
      const warnings = (b.warnings ?? []).map((w) => `warning: ${w.route}: ${w.code}: ${w.message}\n`).join('');
      return { json: answer.body, human: `${answer.status === 201 ? 'created' : 'replaced'} policy set ${set}: version ${version}${note}\n${warnings}` };
    },
  },
  {
    path: ['policy', 'test'],
    routes: [],
    spec: {
      summary: 'Run a policy file\'s tests offline, with the authorizer\'s own decision engine.',
      options: FILE_OPTION('the policy file'),
      details: [
        'Each test { name, principal, request: { method, path, headers?, query? }, expect: "allow" | "deny" | { decision, code? } } is decided against the file\'s routes and gate; no API is called. Principals: { "kind": "user", "id", "siteRoles"?, "orgs"?: { "<org>": ["<role>"] }, "email"?, "emailVerified"?, "groups"?, "claims"? }, { "kind": "token", "tokenKind": "personal" | "org" | "site", "id", "ownerId"? (personal), "orgId"? (org), "scopes"?: ["resource:action"] }, or { "kind": "anonymous" }.',
        'Roles are the built-in ones plus the file\'s optional "roles" array (custom roles: { name, orgId?, site?, org?, member?, user? }); a role name that is neither is an error (exit 2), not a deny.',
        'Exit codes: 0 every test passed, 5 at least one failed (each failure shows the expected and actual decision and reason code), 2 the file is invalid.',
      ],
      examples: ['gatehouse policy test --file default.policy.json'],
    },
    async run(ctx) {
      const { file, policy } = await readPolicyFile(ctx);
      const compiled = compilePolicy({ set: policy.set ?? 'file', version: policy.version ?? 'file', routes: policy.routes, ...(policy.gate !== null ? { gate: policy.gate } : {}), roles: policy.roles ?? [] });
      let results: PolicyTestResult[];
      try {
        results = runPolicyTests(compiled, policy.tests, ctx.now());
      } catch (err) {
        if (err instanceof GatehouseError) throw new UsageError(`${fileName(file)}: ${err.code}: ${err.message}`);
        throw err;
      }
      const failed = results.filter((r) => !r.passed).length;
      const human = results.length === 0 ? `no tests in ${fileName(file)}\n` : formatTestResults(results);
      return { json: { passed: results.length - failed, failed, results }, human, ...(failed > 0 ? { exit: EXIT.testsFailed } : {}) };
    },
  },
  {
    path: ['policy', 'rules'],
    routes: ['PATCH /policies/sets/{set}'],
    spec: {
      summary: 'Add, replace or remove single rules of a live set (or set its gate) without resending the table.',
      args: [SET_ARG],
      options: {
        upsert: { type: 'string', value: '<file>', description: 'rules to add or replace (same route shape), as a JSON array or one rule (- reads standard input)' },
        remove: { type: 'string', multiple: true, value: '<"METHOD /path">', description: 'a rule to remove, by its route' },
        gate: { type: 'string', value: '<expression>', description: 'set the gate expression' },
        'clear-gate': { type: 'boolean', description: 'remove the gate' },
        version: { type: 'string', value: '<version>', description: 'only if the set is still at this version (default: the version just read)' },
      },
      details: ['The edit is made with If-Match: --version, else the version just read; a concurrent write in between is refused with exit code 4 and nothing is written. Rules are keyed by route shape (parameter names do not count). To edit many rules, pull, edit and push instead.'],
      examples: ['gatehouse policy rules partner --remove "GET /old"', 'gatehouse policy rules partner --upsert new-rule.json'],
    },
    async run(ctx) {
      const set = ctx.args.set!;
      const body: Record<string, unknown> = {};
      const upsertFile = str(ctx.values.upsert);
      if (upsertFile !== undefined) {
        const rules = await readJson(ctx, upsertFile);
        body.upsert = Array.isArray(rules) ? rules : [rules];
      }
      if (list(ctx.values.remove).length) body.remove = list(ctx.values.remove);
      const gate = str(ctx.values.gate);
      if (gate !== undefined && ctx.values['clear-gate']) throw new UsageError('give --gate or --clear-gate, not both');
      if (gate !== undefined) body.gate = gate;
      if (ctx.values['clear-gate']) body.gate = null;
      if (Object.keys(body).length === 0) throw new UsageError('nothing to change: give --upsert, --remove, --gate or --clear-gate');
      const version = versionOption(ctx) ?? (await readSet(ctx, set)).version;
      const answer = await ctx.client.call('PATCH', `/policies/sets/${seg(set)}`, { body, headers: { 'if-match': `"${version}"` } });
      const b = answer.body as { version?: string; routes?: unknown[] };
      return { json: answer.body, human: `edited policy set ${set}: version ${unquote(answer.etag) ?? String(b.version)} (${b.routes?.length ?? 0} routes)\n` };
    },
  },
  {
    path: ['policy', 'delete'],
    routes: ['DELETE /policies/sets/{set}'],
    spec: { summary: 'Delete a stored policy set that no API is bound to.', args: [SET_ARG], options: { version: { type: 'string', value: '<version>', description: 'only if the set is still at this version (default: the version just read)' } } },
    async run(ctx) {
      const set = ctx.args.set!;
      const version = versionOption(ctx) ?? (await readSet(ctx, set)).version;
      await ctx.client.call('DELETE', `/policies/sets/${seg(set)}`, { headers: { 'if-match': `"${version}"` } });
      return { human: `deleted policy set ${set}\n` };
    },
  },
  {
    path: ['policy', 'bind'],
    routes: ['GET /policies/apis/{apiId}', 'PUT /policies/apis/{apiId}'],
    spec: {
      summary: 'Decide an API with a policy set (bind it, or move its binding).',
      args: [{ name: 'apiId', description: 'the API Gateway API id (ten lower-case letters and digits)' }, { name: 'set', description: 'the policy set, which must exist' }],
      details: ['The binding is read first and written conditionally on what was read (If-None-Match: * when unbound, else If-Match), so two concurrent rebinds never silently overwrite each other: the loser exits 4.'],
      examples: ['gatehouse policy bind a1b2c3d4e5 partner'],
    },
    async run(ctx) {
      const apiId = ctx.args.apiId!;
      const set = ctx.args.set!;
      const current = await readBinding(ctx, apiId);
      if (current?.set === set) return { json: { apiId, set, version: current.version }, human: `API ${apiId} is already bound to ${set}\n` };
      const headers: Record<string, string> = current ? { 'if-match': `"${current.version}"` } : { 'if-none-match': '*' };
      const answer = await ctx.client.call('PUT', `/policies/apis/${seg(apiId)}`, { body: { set }, headers });
      return { json: answer.body, human: `bound API ${apiId} to policy set ${set} (was ${current ? current.set : 'unbound: default'})\n` };
    },
  },
  {
    path: ['policy', 'unbind'],
    routes: ['GET /policies/apis/{apiId}', 'DELETE /policies/apis/{apiId}'],
    spec: { summary: 'Unbind an API: it is decided with the default set again.', args: [{ name: 'apiId', description: 'the API Gateway API id' }] },
    async run(ctx) {
      const apiId = ctx.args.apiId!;
      const current = await readBinding(ctx, apiId);
      if (!current) throw new ApiError(404, 'binding-not-found', `API ${apiId} is bound to no set (it is decided with default)`);
      await ctx.client.call('DELETE', `/policies/apis/${seg(apiId)}`, { headers: { 'if-match': `"${current.version}"` } });
      return { human: `unbound API ${apiId} (was ${current.set}); it is decided with default now\n` };
    },
  },
  {
    path: ['policy', 'routes'],
    routes: ['GET /policies/routes', 'PUT /policies/routes'],
    spec: {
      summary: 'The default set\'s route table at its first endpoint (/policies/routes); --replace writes it.',
      options: {
        replace: { type: 'string', value: '<file>', description: 'replace the table with the "routes" of this file: what --json prints, or a policy file (- reads standard input)' },
        version: { type: 'string', value: '<version>', description: 'with --replace: only if the table is still at this version (default: the file\'s "version")' },
        force: { type: 'boolean', description: 'with --replace: overwrite whatever version is live (If-Match: *)' },
      },
      details: ['The same table as policy pull default / push default, for scripts written against /policies/routes. A replace carries If-Match (--version, else the file\'s version): when the table changed since, it is refused with exit code 4 and nothing is written.'],
      examples: ['gatehouse policy routes --json > routes.json', 'gatehouse policy routes --replace routes.json'],
    },
    async run(ctx) {
      const file = str(ctx.values.replace);
      if (file === undefined) {
        if (ctx.values.force || ctx.values.version !== undefined) throw new UsageError('--version and --force go with --replace');
        const answer = await ctx.client.call('GET', '/policies/routes');
        const b = answer.body as { routes?: RouteRule[]; version?: string };
        const rules = (b.routes ?? []).map((r) => `  ${ruleText(r)}\n`).join('');
        return { json: answer.body, human: `default set, version ${unquote(answer.etag) ?? String(b.version)}: ${b.routes?.length ?? 0} routes\n${rules}` };
      }
      if (ctx.values.force && ctx.values.version !== undefined) throw new UsageError('give --version or --force, not both');
      const raw = await readJson(ctx, file);
      const doc = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as { routes?: unknown; version?: unknown }) : undefined;
      if (!doc || doc.routes === undefined) throw new UsageError(`${fileName(file)} must hold an object with "routes"`);
      let routes: RouteRule[];
      try {
        routes = validateRouteRules(doc.routes, { validateCondition });
      } catch (err) {
        if (err instanceof GatehouseError) throw new UsageError(`${fileName(file)}: ${err.code}: ${err.message}`);
        throw err;
      }
      const fileVersion = typeof doc.version === 'string' && FILE_VERSION_RE.test(doc.version) ? doc.version : undefined;
      const version = versionOption(ctx) ?? fileVersion;
      if (!ctx.values.force && version === undefined) throw new UsageError(`${fileName(file)} has no version: give --version, or --force to overwrite`);
      const answer = await ctx.client.call('PUT', '/policies/routes', { body: { routes }, headers: { 'if-match': ctx.values.force ? '*' : `"${version!}"` } });
      const b = answer.body as { version?: string; warnings?: { route: string; code: string; message: string }[] };
      const warnings = (b.warnings ?? []).map((w) => `warning: ${w.route}: ${w.code}: ${w.message}\n`).join('');
      return { json: answer.body, human: `replaced the default set's routes: version ${unquote(answer.etag) ?? String(b.version)} (${routes.length} routes)\n${warnings}` };
    },
  },
  {
    path: ['policy', 'gate'],
    routes: ['GET /policies/gate', 'PUT /policies/gate'],
    spec: {
      summary: 'The default set\'s gate at its first endpoint (/policies/gate); --set or --clear writes it.',
      options: {
        set: { type: 'string', value: '<expression>', description: 'the jexl expression every non-public request must pass' },
        clear: { type: 'boolean', description: 'remove the gate' },
        version: { type: 'string', value: '<version>', description: 'only if the default set is still at this version (default: the version just read)' },
      },
      details: ['Other sets\' gates: policy rules <set> --gate / --clear-gate, or pull and push. A write carries If-Match (--version, else the version just read): a concurrent write is refused with exit code 4.'],
      examples: ['gatehouse policy gate', 'gatehouse policy gate --set \'"platform" in principal.groups\''],
    },
    async run(ctx) {
      const expression = str(ctx.values.set);
      const clear = ctx.values.clear === true;
      if (expression !== undefined && clear) throw new UsageError('give --set or --clear, not both');
      if (expression === undefined && !clear) {
        if (ctx.values.version !== undefined) throw new UsageError('--version goes with --set or --clear');
        const answer = await ctx.client.call('GET', '/policies/gate');
        const b = answer.body as { expression?: string | null; version?: string };
        return { json: answer.body, human: `default set, version ${unquote(answer.etag) ?? String(b.version)}: gate ${b.expression ?? '(none)'}\n` };
      }
      if (expression !== undefined) {
        try {
          validateExpression(expression);
        } catch (err) {
          if (err instanceof GatehouseError) throw new UsageError(`--set: ${err.code}: ${err.message}`);
          throw err;
        }
      }
      let version = versionOption(ctx);
      if (version === undefined) {
        const read = await ctx.client.call('GET', '/policies/gate');
        version = unquote(read.etag) ?? String((read.body as { version?: string }).version);
      }
      const answer = await ctx.client.call('PUT', '/policies/gate', { body: { expression: expression ?? null }, headers: { 'if-match': `"${version}"` } });
      const b = answer.body as { version?: string; warnings?: { route: string; code: string; message: string }[] };
      const warnings = (b.warnings ?? []).map((w) => `warning: ${w.route}: ${w.code}: ${w.message}\n`).join('');
      return { json: answer.body, human: `${clear ? 'cleared' : 'set'} the default set's gate: version ${unquote(answer.etag) ?? String(b.version)}\n${warnings}` };
    },
  },
];

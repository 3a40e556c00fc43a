import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { generateToken, hashSecret } from '../core/identity/token-format';
import { createDynamoStore } from '../core/store/dynamo/index';
import { type CommandSpec, helpText, parseCommand, UsageError, usageLine } from '../cli/args';
import { isEntryPoint } from '../cli/entry';

export interface BootstrapOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Also give this user id (e.g. `userIdPrefix + sub` at your OIDC issuer) the `site-admin` role. */
  userId?: string;
  /** Lifetime of the site token, 1..3650 days (default 30). */
  expiresInDays?: number;
  /** Epoch seconds (tests). */
  now?: number;
}

export interface BootstrapResult {
  /** The full token: shown once, never stored. */
  token: string;
  tokenId: string;
  expiresAt: number;
}

/**
 * Creates the first site admin of a fresh deployment with the operator's own AWS
 * credentials: a site token without scopes (all site rights, like `site-admin`), and
 * optionally the `site-admin` role for a user. Nothing is written to any policy set: the
 * admin API is decided by the built-in `admin` set. Idempotent apart from the token:
 * running it again adds a token, never a duplicate role.
 */
export async function bootstrapAdmin(options: BootstrapOptions): Promise<BootstrapResult> {
  const days = options.expiresInDays ?? 30;
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new RangeError('expiresInDays must be an integer 1..3650');
  const store = createDynamoStore({ client: options.client, tableName: options.tableName });
  const now = options.now ?? Math.floor(Date.now() / 1000);

  const t = generateToken();
  const expiresAt = now + days * 86400;
  await store.tokens.createToken({
    id: t.id,
    kind: 'site',
    name: 'bootstrap',
    secretHash: hashSecret(t.secret),
    createdAt: now,
    expiresAt,
    createdBy: 'bootstrap-admin',
  });

  if (options.userId) {
    const roles = await store.users.getSiteRoles(options.userId);
    if (!roles.includes('site-admin')) await store.users.putSiteRoles(options.userId, [...roles, 'site-admin'], now);
  }
  return { token: t.token, tokenId: t.id, expiresAt };
}

/** What `--no-routes` prints: it used to skip storing the admin API's route policies, which nothing stores any more. */
export const NO_ROUTES_NOTE = 'bootstrap-admin: --no-routes is no longer needed and does nothing: the admin API is decided by the built-in admin policy set, and nothing is written to the route table';

const SPEC: CommandSpec = {
  usage: 'npm run bootstrap-admin --',
  summary: 'Creates the first site admin of a fresh deployment with your own AWS credentials: prints a site token (shown once) and gives --user the site-admin role. The admin API is decided by the built-in admin policy set: nothing is written to any route table.',
  options: {
    table: { type: 'string', value: '<tableName>', description: 'the table (the tableName output of the deploy; default: GATEHOUSE_TABLE)' },
    user: { type: 'string', value: '<userId>', description: 'also give this user id (userIdPrefix + your sub at the issuer) the site-admin role' },
    days: { type: 'string', value: '<1..3650>', description: 'lifetime of the site token in days (default 30)' },
    'no-routes': { type: 'boolean', description: 'kept for old scripts: does nothing (nothing writes routes any more)' },
  },
  details: ['AWS credentials and region come from the usual AWS SDK sources (AWS_PROFILE, AWS_REGION, ...). The token alone goes to stdout; everything else to stderr.'],
  examples: ['npm run -s bootstrap-admin -- --table gatehouse-prod --user alice > admin-token'],
};

/** Parses the command line: the options, `{ help }` for --help, or a usage error message. */
export function parseArgs(argv: string[], env: Record<string, string | undefined>): { tableName: string; userId?: string; days: number; notes: string[] } | { help: string } | string {
  let parsed;
  try {
    parsed = parseCommand(SPEC, argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return `bootstrap-admin: ${err.message.replace(/^unknown option/, 'unknown argument')}\n${usageLine(SPEC)}`;
  }
  if (parsed.help) return { help: helpText(SPEC) };
  const v = parsed.values;
  const tableName = typeof v.table === 'string' ? v.table : env.GATEHOUSE_TABLE;
  if (!tableName) return `bootstrap-admin: no table (--table or GATEHOUSE_TABLE)\n${usageLine(SPEC)}`;
  const daysText = typeof v.days === 'string' ? v.days : '30';
  if (!/^\d+$/.test(daysText) || Number(daysText) < 1 || Number(daysText) > 3650) return 'bootstrap-admin: --days must be an integer 1..3650';
  const notes = v['no-routes'] === true ? [NO_ROUTES_NOTE] : [];
  return { tableName, days: Number(daysText), notes, ...(typeof v.user === 'string' ? { userId: v.user } : {}) };
}

/**
 * One line naming what failed and why: the error, then each `cause` (the AWS SDK's own
 * error, e.g. `Error: Region is missing`), without stack traces.
 */
export function describeFailure(err: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  for (let e: unknown = err; e && !seen.has(e) && parts.length < 5; e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const name = (e as { name?: unknown }).name;
    const message = (e as { message?: unknown }).message;
    parts.push(`${typeof name === 'string' ? name : 'Error'}: ${typeof message === 'string' && message !== '' ? message : '(no message)'}`);
  }
  return parts.join(' <- caused by ').replace(/\s+/g, ' ').trim();
}

async function main(): Promise<number> {
  const parsed = parseArgs(process.argv.slice(2), process.env);
  if (typeof parsed === 'string') {
    console.error(parsed);
    return 2;
  }
  if ('help' in parsed) {
    process.stdout.write(parsed.help);
    return 0;
  }
  for (const note of parsed.notes) console.error(note);
  const client = new DynamoDBClient({});
  const result = await bootstrapAdmin({ client, tableName: parsed.tableName, expiresInDays: parsed.days, ...(parsed.userId ? { userId: parsed.userId } : {}) });
  if (parsed.userId) console.error(`bootstrap-admin: ${parsed.userId} holds site-admin`);
  console.error(`bootstrap-admin: site token ${result.tokenId} expires ${new Date(result.expiresAt * 1000).toISOString()}; it is shown once, below (revoke it with DELETE /tokens/${result.tokenId} once you have your own admin)`);
  // The token alone on stdout, so `npm run -s bootstrap-admin -- ... > token` captures just it.
  console.log(result.token);
  return 0;
}

if (isEntryPoint(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(`bootstrap-admin: failed: ${describeFailure(err)}`);
      process.exit(1);
    },
  );
}

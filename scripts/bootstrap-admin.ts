import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { generateToken, hashSecret } from '../core/identity/token-format';
import { createDynamoStore } from '../core/store/dynamo/index';

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

const USAGE = 'usage: npm run bootstrap-admin -- [--table <tableName output>] [--user <user id>] [--days <1..3650>]\n(the table defaults to GATEHOUSE_TABLE; AWS credentials and region come from the usual AWS SDK sources)';

/** What `--no-routes` prints: it used to skip storing the admin API's route policies, which nothing stores any more. */
export const NO_ROUTES_NOTE = 'bootstrap-admin: --no-routes is no longer needed and does nothing: the admin API is decided by the built-in admin policy set, and nothing is written to the route table';

/** Parses the command line; a string is a usage error. `notes` are printed on stderr. */
export function parseArgs(argv: string[], env: Record<string, string | undefined>): { tableName: string; userId?: string; days: number; notes: string[] } | string {
  const values: Record<string, string> = {};
  const notes: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--no-routes') {
      if (!notes.includes(NO_ROUTES_NOTE)) notes.push(NO_ROUTES_NOTE);
    } else if (a === '--help' || a === '-h') return USAGE;
    else if (['--table', '--user', '--days'].includes(a)) {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--') || v === '') return `bootstrap-admin: ${a} needs a value\n${USAGE}`;
      values[a.slice(2)] = v;
    } else return `bootstrap-admin: unknown argument ${JSON.stringify(a)}\n${USAGE}`;
  }
  const tableName = values.table ?? env.GATEHOUSE_TABLE;
  if (!tableName) return `bootstrap-admin: no table (--table or GATEHOUSE_TABLE)\n${USAGE}`;
  const days = values.days === undefined ? 30 : Number(values.days);
  if (!/^\d+$/.test(values.days ?? '30') || days < 1 || days > 3650) return 'bootstrap-admin: --days must be an integer 1..3650';
  return { tableName, days, notes, ...(values.user ? { userId: values.user } : {}) };
}

async function main(): Promise<number> {
  const parsed = parseArgs(process.argv.slice(2), process.env);
  if (typeof parsed === 'string') {
    console.error(parsed);
    return 2;
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

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(`bootstrap-admin: ${(err as Error).name}: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}

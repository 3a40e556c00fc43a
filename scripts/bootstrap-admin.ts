import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { pathToFileURL } from 'node:url';
import { generateToken, hashSecret } from '../core/identity/token-format';
import { createDynamoStore } from '../core/store/dynamo/index';

/**
 * Creates the first site admin of a fresh deployment with the operator's own AWS
 * credentials: a site token with all site rights (printed once), and optionally the
 * `site-admin` role for a user id (e.g. the operator's `sub` at their OIDC issuer).
 */
export async function bootstrapAdmin(options: { client: DynamoDBClient; tableName: string; userId?: string; expiresInDays?: number; now?: number }): Promise<{ token: string; tokenId: string }> {
  const store = createDynamoStore({ client: options.client, tableName: options.tableName });
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const t = generateToken();
  await store.tokens.createToken({
    id: t.id,
    kind: 'site',
    name: 'bootstrap',
    secretHash: hashSecret(t.secret),
    createdAt: now,
    expiresAt: now + (options.expiresInDays ?? 30) * 86400,
    createdBy: 'bootstrap-admin',
  });
  if (options.userId) {
    const roles = await store.users.getSiteRoles(options.userId);
    if (!roles.includes('site-admin')) await store.users.putSiteRoles(options.userId, [...roles, 'site-admin'], now);
  }
  return { token: t.token, tokenId: t.id };
}

async function main() {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const tableName = arg('table') ?? process.env.GATEHOUSE_TABLE;
  if (!tableName) {
    console.error('usage: npm run bootstrap-admin -- --table <name from the sst outputs> [--user <user id>] [--days <1..3650>]');
    process.exit(2);
  }
  const days = arg('days') ? Number(arg('days')) : 30;
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    console.error('bootstrap-admin: --days must be an integer 1..3650');
    process.exit(2);
  }
  const user = arg('user');
  const { token, tokenId } = await bootstrapAdmin({ client: new DynamoDBClient({}), tableName, ...(user ? { userId: user } : {}), expiresInDays: days });
  console.log(`site token ${tokenId} created (expires in ${days} days). It is shown once:`);
  console.log(token);
  if (user) console.log(`${user} now holds site-admin.`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    console.error(`bootstrap-admin: ${(err as Error).name}: ${(err as Error).message}`);
    process.exit(1);
  });
}

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchLocalToken } from './oidc-client';

/** `npm run token -- --user alice --email alice@example.com`: a JWT from the running local issuer. */
async function main() {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const user = arg('user');
  if (!user) {
    console.error('usage: npm run token -- --user <id> [--email <address>]');
    process.exit(2);
  }
  const dataDir = process.env.GATEHOUSE_DATA_DIR ?? '.gatehouse';
  const issuerFile = join(dataDir, 'oidc-issuer');
  const issuer = process.env.GATEHOUSE_OIDC_URL || (existsSync(issuerFile) ? readFileSync(issuerFile, 'utf8').trim() : undefined);
  if (!issuer) {
    console.error('gatehouse: no local issuer found: start the stack with `npm start` first');
    process.exit(1);
  }
  process.stdout.write((await fetchLocalToken(`${issuer}/token`, user, arg('email'))) + '\n');
}

main().catch((err) => {
  console.error(`gatehouse: ${(err as Error).message}`);
  process.exit(1);
});

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CommandSpec, helpText, parseCommand, UsageError, usageLine } from '../cli/args';
import { fetchLocalToken, localIssuerCandidates, parseClaim, parseGroups, findLocalIssuer } from './oidc-client';

const SPEC: CommandSpec = {
  usage: 'npm run token --',
  summary: 'Prints a JWT access token for a chosen user, signed by the local OIDC issuer of a running `npm start` (persistent or --in-memory).',
  options: {
    user: { type: 'string', value: '<id>', description: 'the user id (the token\'s sub)', required: true },
    email: { type: 'string', value: '<address>', description: 'an email claim, marked verified (email_verified: true)' },
    groups: { type: 'string', multiple: true, value: '<a,b>', description: 'groups claim: comma-separated names' },
    claim: { type: 'string', multiple: true, value: '<key=value>', description: 'an extra claim; the value is JSON when it parses as JSON (42, true, ["a"]), else a string' },
    issuer: { type: 'string', value: '<url>', description: 'the local issuer (default: GATEHOUSE_OIDC_URL, else the one in the data directory, else http://127.0.0.1:<PORT + 1>)' },
  },
  details: [
    'Claims the issuer sets itself (iss, sub, aud, exp, iat, nbf, jti, client_id, scope) cannot be given. --claim email_verified=false marks --email unverified.',
  ],
  examples: ['npm run -s token -- --user alice --email alice@example.com', 'npm run -s token -- --user bob --groups platform,eng --claim tier=gold --claim level=3'],
};

/** `npm run token -- --user alice --email alice@example.com`: a JWT from the running local issuer. */
async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseCommand(SPEC, process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`npm run token: ${err.message}\n${usageLine(SPEC)}\n(npm run token -- --help)`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(helpText(SPEC));
    return 0;
  }
  const v = parsed.values;
  let groups: string[] | undefined;
  const claims: Record<string, unknown> = {};
  try {
    if (Array.isArray(v.groups)) groups = parseGroups(v.groups);
    for (const c of Array.isArray(v.claim) ? v.claim : []) Object.assign(claims, parseClaim(c));
  } catch (err) {
    console.error(`npm run token: ${(err as Error).message}\n${usageLine(SPEC)}`);
    return 2;
  }
  const dataDir = process.env.GATEHOUSE_DATA_DIR ?? '.gatehouse';
  const issuerFile = join(dataDir, 'oidc-issuer');
  const candidates = localIssuerCandidates({
    explicit: typeof v.issuer === 'string' ? v.issuer : process.env.GATEHOUSE_OIDC_URL || undefined,
    fromDataDir: existsSync(issuerFile) ? readFileSync(issuerFile, 'utf8').trim() : undefined,
    env: process.env,
  });
  const found = await findLocalIssuer(candidates);
  if (!found) {
    console.error(`gatehouse: no local issuer found (tried ${candidates.join(', ')}): start the stack with \`npm start\` first, or give --issuer`);
    return 1;
  }
  process.stdout.write((await fetchLocalToken(found.tokenUrl, String(v.user), typeof v.email === 'string' ? v.email : undefined, { ...(groups ? { groups } : {}), ...(Object.keys(claims).length ? { claims } : {}) })) + '\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`gatehouse: ${(err as Error).message}`);
    process.exit(1);
  },
);

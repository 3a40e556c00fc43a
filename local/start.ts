import { startStack, StackError } from './stack';

/** `npm start`: the whole of gatehouse on one machine. */
async function main() {
  const inMemory = process.argv.includes('--in-memory');
  // One readable line per request by default; the handlers' structured JSON lines on request.
  const jsonLogs = process.argv.includes('--json-logs');
  const port = Number(process.env.PORT ?? 3000);
  const dynamoPort = Number(process.env.GATEHOUSE_DYNAMODB_PORT ?? 8000);
  const ttl = Number(process.env.GATEHOUSE_LOCAL_AUTH_TTL_SECONDS ?? 5);
  const dataDir = process.env.GATEHOUSE_DATA_DIR ?? '.gatehouse';
  let stack;
  try {
    // A fixed issuer port keeps issued tokens valid across restarts.
    const env = { GATEHOUSE_OIDC_PORT: String(port + 1), ...process.env } as Record<string, string>;
    stack = await startStack({ port, dynamoPort, dataDir, inMemory, authTtlSeconds: ttl, env, jsonLogs });
  } catch (err) {
    if (err instanceof StackError) {
      console.error(`gatehouse: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  console.log('gatehouse local stack');
  console.log(`  DynamoDB Local   http://127.0.0.1:${stack.dynamoPort}  (${inMemory ? 'in memory' : `data in ${stack.dataDir}`})`);
  // `npm run token` finds the issuer in the data directory, else at PORT + 1 (3001 unless
  // told otherwise): only an in-memory stack elsewhere needs to say where it is.
  const findable = stack.dataDir || stack.issuer?.issuer === 'http://127.0.0.1:3001';
  const tokenHint = `${findable ? '' : `GATEHOUSE_OIDC_URL=${stack.issuer?.issuer} `}npm run token -- --user alice --email alice@example.com`;
  if (stack.issuer) console.log(`  OIDC issuer      ${stack.issuer.issuer}  (trusted; get a token: ${tokenHint})`);
  console.log(`  API Gateway      ${stack.url}  (admin API at /, demo upstream at /demo/…, authorizer cache ${ttl}s)`);
  if (stack.bootstrapToken) {
    console.log('');
    console.log('Bootstrap site-admin token (shown once' + (stack.dataDir ? `, also in ${stack.dataDir}/bootstrap-token` : '') + '):');
    console.log(`  ${stack.bootstrapToken}`);
  } else if (stack.dataDir) {
    console.log(`  bootstrap token  in ${stack.dataDir}/bootstrap-token`);
  }
  console.log('');
  // In memory there is no token file: show the token itself.
  const bearer = stack.dataDir ? `$(cat ${stack.dataDir}/bootstrap-token)` : stack.bootstrapToken;
  console.log(`Try: curl -H "Authorization: Bearer ${bearer}" ${stack.url}/me`);
  console.log(`Each request prints one line (method, path, status, outcome, reason code)${jsonLogs ? ', after the handlers\' JSON log lines' : '; the handlers\' JSON log lines too: npm start -- --json-logs'}.`);
  console.log(`ready ${stack.url}`);
  let stopping = false;
  // After a hang-up nobody may be reading: a write to a closed pipe must not crash the
  // stop below (that would orphan DynamoDB Local).
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`gatehouse: ${signal}, stopping`);
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // A closed terminal hangs up the whole process group: stop as for Ctrl-C.
  process.on('SIGHUP', () => void stop('SIGHUP'));
  // npm forwards only SIGINT and SIGTERM to us: hung up itself (`kill -HUP <npm>`), it
  // exits without a word and we are re-parented. Stop then too, so no Java is orphaned.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void stop('parent process exited');
  }, 500).unref();
}

main().catch((err) => {
  console.error(`gatehouse: ${(err as Error).message}`);
  process.exit(1);
});

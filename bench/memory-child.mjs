// A plain Node process running the bundled REST authorizer, as a small Lambda would
// (`--max-old-space-size=64 --expose-gc`). It signs a new JWT for each of USERS distinct
// users (RS256, node:crypto), decides one request for each, then one request for each
// of the gatehouse TOKENS, and after every STEP callers prints the heap after a forced
// GC and the RSS as one JSON line. Arguments come from the environment (see bench/run.ts).
import { createSign, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

const { BUNDLE, KEY_PEM, KID, ISSUER, USERS, TOKENS_FILE, STEP, ARN_PREFIX } = process.env;
const { handler } = await import(`file://${BUNDLE}`);
const key = createPrivateKey(readFileSync(KEY_PEM, 'utf8'));
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const header = b64({ alg: 'RS256', kid: KID, typ: 'JWT' });
const now = Math.floor(Date.now() / 1000);

function jwt(sub) {
  const body = `${header}.${b64({ iss: ISSUER, aud: 'api', sub, iat: now, exp: now + 3600, email: `${sub}@bench.test`, email_verified: true })}`;
  const s = createSign('sha256');
  s.update(body);
  return `${body}.${s.sign(key).toString('base64url')}`;
}

const step = Number(STEP);
const report = (users, tokens) => {
  globalThis.gc();
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ users, tokens, heapMiB: m.heapUsed / 1048576, rssMiB: m.rss / 1048576 })}\n`);
};
const decide = async (credential, i) => {
  try {
    await handler({ type: 'TOKEN', authorizationToken: `Bearer ${credential}`, methodArn: `${ARN_PREFIX}/GET/orgs/org${i % 100}/projects/p${i}` });
  } catch (err) {
    if (err.message !== 'Unauthorized') throw err;
  }
};

const users = Number(USERS);
for (let i = 1; i <= users; i++) {
  await decide(jwt(`user${i}`), i);
  if (i % step === 0) report(i, 0);
}
const tokens = readFileSync(TOKENS_FILE, 'utf8').split('\n').filter(Boolean);
for (let i = 1; i <= tokens.length; i++) {
  await decide(tokens[i - 1], i);
  if (i % step === 0 || i === tokens.length) report(users, i);
}

/**
 * `npm start -- --in-memory` writes nothing, yet `npm run token` finds its issuer (at
 * PORT + 1, past a stale record in the data directory) and puts groups and claims into
 * a token gatehouse accepts; a terminal hang-up (SIGHUP to the process group) stops all.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../local/dynamodb-local';
import { npmStart, reap, type Started } from './npm-process';

const ROOT = resolve(import.meta.dirname, '../..');

describe('npm run token with an in-memory stack', () => {
  let stack: Started | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-stale-'));
  afterAll(() => {
    reap(stack);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('finds the issuer, carries --groups and --claim into the access token, and SIGHUP stops the stack', async () => {
    let port = await freePort();
    while (port >= 65535) port = await freePort();
    const dynamoPort = await freePort();
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GATEHOUSE_') && !k.startsWith('AWS_') && k !== 'PORT' && k !== 'NODE_OPTIONS' && !k.startsWith('VITEST')) env[k] = v;
    Object.assign(env, { PORT: String(port), GATEHOUSE_DYNAMODB_PORT: String(dynamoPort), GATEHOUSE_LOG_LEVEL: 'error' });
    // A persistent stack that ran here before left its issuer's address behind; nothing answers there now.
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'oidc-issuer'), `http://127.0.0.1:${await freePort()}`);
    stack = await npmStart(['--in-memory'], { ...env, GATEHOUSE_DATA_DIR: join(dataDir, 'not-written') });
    expect(existsSync(join(dataDir, 'not-written'))).toBe(false);

    const r = spawnSync('npm', ['run', '-s', 'token', '--', '--user', 'bob', '--email', 'bob@example.com', '--groups', 'platform,eng', '--groups', 'ops', '--claim', 'tier=gold', '--claim', 'level=3', '--claim', 'beta=true'], {
      cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...env, GATEHOUSE_DATA_DIR: dataDir },
    });
    expect(r.status, r.stderr).toBe(0);
    const jwt = r.stdout.trim();
    const issuer = `http://127.0.0.1:${port + 1}`;
    const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(`${issuer}/jwks`)), { issuer, audience: 'gatehouse' });
    expect(payload).toMatchObject({ sub: 'bob', email: 'bob@example.com', email_verified: true, groups: ['platform', 'eng', 'ops'], tier: 'gold', level: 3, beta: true });
    // gatehouse takes it.
    const me = await fetch(`${stack.url}/me`, { headers: { authorization: `Bearer ${jwt}` } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ id: 'bob', email: 'bob@example.com' });

    // The terminal closes: SIGHUP to the whole process group.
    process.kill(-stack.child.pid!, 'SIGHUP');
    await stack.exit;
    const deadline = Date.now() + 15_000;
    const alive = () => stack!.tree.filter((pid) => spawnSync('kill', ['-0', String(pid)]).status === 0);
    while (Date.now() < deadline && alive().length) await new Promise((res) => setTimeout(res, 100));
    expect(alive()).toEqual([]);
  }, 150_000);
});

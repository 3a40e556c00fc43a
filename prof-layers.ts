import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { JwtRsaVerifier } from 'aws-jwt-verify';
import { createSign, KeyObject, verify as cv } from 'node:crypto';
import { importJWK } from 'jose';
import { createRestAuthorizer } from '/work/main/core/gateway/handlers';
import { ensureTable } from '/work/main/core/store/dynamo/table';
import { createRuntime } from '/work/main/functions/runtime';
import { startDynamoLocal } from '/work/main/local/dynamodb-local';
import { makeIssuer } from '/work/main/test/support/jwt';
const dynamo = await startDynamoLocal();
const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'b', secretAccessKey: 'b' } });
await ensureTable(client, 'prof');
const idp = await makeIssuer();
const rt = createRuntime({ GATEHOUSE_TABLE: 'prof', GATEHOUSE_ISSUERS: JSON.stringify([idp.config]), GATEHOUSE_LOG_LEVEL: 'error' }, { client, logSink: () => {} });
const rest = createRestAuthorizer({ authorizer: rt.authorizer, answers: rt.answers, logger: rt.logger });
const now = Math.floor(Date.now() / 1000);
await rt.store.policy.putRoutes([{ route: 'GET /orgs/{orgId}/projects/{projectId}', resource: 'project', action: 'read', org: '{orgId}' }, { route: 'GET /orgs/{orgId}/projects', resource: 'project', action: 'list', org: '{orgId}' }], now);
await rt.store.users.putMembership('acme', 'alice', ['org-viewer'], now);
const pem = KeyObject.from(idp.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string;
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const head = b64({ alg: 'RS256', kid: 'k1', typ: 'JWT' });
const sign = (jti: string) => { const body = `${head}.${b64({ iss: idp.issuer, aud: 'api', sub: 'alice', iat: now, exp: now + 3600, jti })}`; return `${body}.${createSign('sha256').update(body).sign(pem).toString('base64url')}`; };
const N = Number(process.argv[2] ?? 20000);
const toks = Array.from({ length: N }, (_, i) => sign('j' + i));
const ev = (c: string) => ({ type: 'TOKEN' as const, authorizationToken: `Bearer ${c}`, methodArn: 'arn:aws:execute-api:us-east-1:123456789012:bench/prod/GET/orgs/acme/projects/p1' });
const aws = JwtRsaVerifier.create({ issuer: idp.issuer, audience: 'api', jwksUri: 'https://idp.test/jwks' });
aws.cacheJwks(idp.jwks as never);
const pub = KeyObject.from((await importJWK(idp.jwks.keys[0]!, 'RS256')) as never);
let i = 0; const tok = () => toks[i++ % toks.length]!;
const sides: [string, () => unknown][] = [
  ['raw crypto.verify', () => { const t = tok(); const d = t.lastIndexOf('.'); return cv('sha256', Buffer.from(t.slice(0, d)), pub, Buffer.from(t.slice(d + 1), 'base64url')); }],
  ['aws verifySync', () => aws.verifySync(tok())],
  ['jwt.verify', () => rt.jwt.verify(tok())],
  ['principals.resolve', () => rt.principals.resolve(tok())],
  ['authorizer.authorize', () => rt.authorizer.authorize({ method: 'GET', path: '/orgs/acme/projects/p1', headers: {}, query: {}, credential: tok(), apiId: 'bench' })],
  ['rest handler', () => rest(ev(tok()))],
];
for (const [, f] of sides) for (let k = 0; k < 300; k++) await f();
const per: number[][] = sides.map(() => []);
for (let r = 0; r < 15; r++) for (let k = 0; k < sides.length; k++) { const j = (r + k) % sides.length; const s = performance.now(); for (let n = 0; n < 100; n++) await sides[j]![1](); per[j]!.push((performance.now() - s) * 10); }
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
sides.forEach(([name], j) => console.log(name.padEnd(22), med(per[j]!).toFixed(1), 'us', 'ratio to aws', med(per[1]!.map((a, r) => a / per[j]![r]!)).toFixed(2)));
await dynamo.stop(); process.exit(0);

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TABLE_SCHEMA } from '../../core/store/schema';
import { ADMIN_ROUTES } from '../../functions/routes';

type Created = { type: string; name: string; args: any; instance: any };

/**
 * Recording stand-ins for SST's globals (`$config`, `$app`, `sst.*`): every component
 * records its type, name, arguments and instance; routes and authorizers are recorded
 * with the API they were added to.
 */
function standIns(stage: string) {
  const created: Created[] = [];
  const routes: { api: string; route: string; handler: unknown; auth: unknown }[] = [];
  const authorizers: { api: string; args: any }[] = [];
  const component = (type: string) =>
    class {
      name: string;
      arn: string;
      url: string;
      value: string;
      constructor(name: string, args?: unknown) {
        this.name = `name:${type}:${name}`;
        this.arn = `arn:${type}:${name}`;
        this.url = `https://${name}.example`;
        this.value = `secret:${name}`;
        created.push({ type, name, args, instance: this });
      }
      addAuthorizer(args: any) {
        authorizers.push({ api: this.name, args });
        return { id: `authorizer:${args.name}` };
      }
      route(route: string, handler: unknown, options: { auth?: unknown } = {}) {
        routes.push({ api: this.name, route, handler, auth: options.auth });
      }
    };
  const g = globalThis as Record<string, unknown>;
  g.$config = (c: unknown) => c;
  g.$app = { stage, name: 'gatehouse' };
  g.sst = {
    Secret: component('Secret'),
    aws: { Dynamo: component('Dynamo'), Function: component('Function'), ApiGatewayV2: component('ApiGatewayV2') },
  };
  return { created, routes, authorizers };
}

let loads = 0;
async function load(stage: string) {
  const rec = standIns(stage);
  // A fresh module instance per load: the query string defeats the module cache.
  const url = `${pathToFileURL(resolve('sst.config.ts')).href}?load=${++loads}`;
  const config = (await import(/* @vite-ignore */ url)).default as { app(i: { stage: string }): Record<string, unknown>; run(): Promise<Record<string, unknown>> };
  const app = config.app({ stage });
  const outputs = await config.run();
  const of = (type: string) => rec.created.filter((c) => c.type === type);
  return { ...rec, of, app, outputs };
}

const STAGES = ['production', 'dev'] as const;
const FUNCTION_OF = { tokens: 'Tokens', invitations: 'Invitations', admin: 'Admin' } as const;

describe('sst.config.ts wiring', () => {
  it('production retains and protects; other stages remove', async () => {
    expect((await load('production')).app).toMatchObject({ name: 'gatehouse', home: 'aws', removal: 'retain', protect: true });
    for (const stage of ['dev', 'staging', 'pr-42']) expect((await load(stage)).app).toMatchObject({ name: 'gatehouse', removal: 'remove', protect: false });
  });

  it.each(STAGES)('%s: one table from the one schema, TTL on expiresAt, PITR, deletion protection only in production', async (stage) => {
    const { of } = await load(stage);
    const tables = of('Dynamo');
    expect(tables).toHaveLength(1);
    const t = tables[0]!.args;
    expect(t.ttl).toBe(TABLE_SCHEMA.ttlAttribute);
    expect(t.ttl).toBe('expiresAt');
    expect(t.primaryIndex).toEqual({ hashKey: TABLE_SCHEMA.partitionKey, rangeKey: TABLE_SCHEMA.sortKey });
    expect(t.globalIndexes).toEqual(
      Object.fromEntries(Object.entries(TABLE_SCHEMA.indexes).map(([n, i]) => [n, { hashKey: i.partitionKey, rangeKey: i.sortKey }])),
    );
    expect(t.fields).toEqual(Object.fromEntries(Object.keys(TABLE_SCHEMA.attributes).map((a) => [a, 'string'])));
    // Every key attribute is declared, and nothing else (DynamoDB refuses unused attribute definitions).
    const used = [t.primaryIndex.hashKey, t.primaryIndex.rangeKey, ...Object.values<any>(t.globalIndexes).flatMap((i) => [i.hashKey, i.rangeKey])];
    expect(Object.keys(t.fields).sort()).toEqual([...new Set(used)].sort());
    const args: Record<string, any> = {};
    t.transform.table(args);
    expect(args.pointInTimeRecovery).toEqual({ enabled: true });
    expect(args.deletionProtectionEnabled).toBe(stage === 'production');
  });

  it.each(STAGES)('%s: six functions on Node.js 22 arm64, minified, linked to the table, settings from secrets', async (stage) => {
    const { of } = await load(stage);
    const table = of('Dynamo')[0]!.instance;
    const fns = of('Function');
    expect(fns.map((f) => f.args.handler).sort()).toEqual([
      'functions/admin.handler', 'functions/authorizer/http.handler', 'functions/authorizer/rest.handler',
      'functions/authorizer/websocket.handler', 'functions/invitations.handler', 'functions/tokens.handler',
    ]);
    const secrets = Object.fromEntries(of('Secret').map((s) => [s.name, s]));
    expect(Object.keys(secrets).sort()).toEqual(['GatehouseCacheTtlSeconds', 'GatehouseIssuers', 'GatehouseLogLevel']);
    for (const f of fns) {
      expect(f.args).toMatchObject({ runtime: 'nodejs22.x', architecture: 'arm64', nodejs: { minify: true } });
      expect(f.args.logging.retention).toMatch(/^\d+ (day|days|week|weeks|month|months|year|years)$/);
      expect(f.args.link).toEqual([table]);
      const env = f.args.environment;
      expect(env.GATEHOUSE_TABLE).toBe(table.name);
      expect(env.GATEHOUSE_ISSUERS).toBe(secrets.GatehouseIssuers!.instance.value);
      expect(env.GATEHOUSE_CACHE_TTL_SECONDS).toBe(secrets.GatehouseCacheTtlSeconds!.instance.value);
      expect(env.GATEHOUSE_LOG_LEVEL).toBe(secrets.GatehouseLogLevel!.instance.value);
    }
    // Nothing about issuers is hard-coded: production has no placeholder at all (the deploy stops until
    // `sst secret set GatehouseIssuers` is run); other stages default to none (gatehouse tokens only).
    expect(secrets.GatehouseIssuers!.args).toBe(stage === 'production' ? undefined : '[]');
    expect(fns.find((f) => f.args.handler === 'functions/authorizer/http.handler')!.args.environment.GATEHOUSE_HTTP_RESPONSE).toBe('simple');
  });

  it.each(STAGES)('%s: every admin route reaches its function behind the gatehouse HTTP authorizer, route in the cache key', async (stage) => {
    const { routes, authorizers, of } = await load(stage);
    const apis = of('ApiGatewayV2');
    expect(apis).toHaveLength(1);
    const api = apis[0]!.instance;
    expect(authorizers).toHaveLength(1);
    const auth = authorizers[0]!;
    expect(auth.api).toBe(api.name);
    const httpFn = of('Function').find((f) => f.args.handler === 'functions/authorizer/http.handler')!.instance;
    expect(auth.args.lambda).toMatchObject({
      function: httpFn.arn,
      identitySources: ['$request.header.Authorization', '$context.routeKey'],
      response: 'simple',
      payload: '2.0',
    });
    expect(auth.args.lambda.ttl).toMatch(/^\d+ seconds?$/);
    expect(parseInt(auth.args.lambda.ttl, 10)).toBeLessThanOrEqual(300);

    expect(routes.map((r) => r.route).sort()).toEqual(Object.keys(ADMIN_ROUTES).sort());
    expect(new Set(routes.map((r) => r.route)).size).toBe(routes.length);
    const fnByName = Object.fromEntries(of('Function').map((f) => [f.name, f]));
    for (const r of routes) {
      const target = fnByName[FUNCTION_OF[ADMIN_ROUTES[r.route as keyof typeof ADMIN_ROUTES]]]!;
      expect(r.handler, r.route).toBe(target.instance.arn);
      expect(r.api).toBe(api.name);
      expect(r.auth, r.route).toEqual({ lambda: 'authorizer:gatehouse' });
    }
  });

  it('the admin route list covers the brief, each route on the function that serves it', () => {
    const count = (fn: string) => Object.values(ADMIN_ROUTES).filter((f) => f === fn).length;
    // admin: 21 endpoints, and 9 for policy sets and API bindings.
    expect([count('tokens'), count('invitations'), count('admin')]).toEqual([10, 6, 30]);
  });

  it('outputs the table name, the admin API URL, and the ARN and name of every function', async () => {
    const { outputs, of } = await load('production');
    const fns = Object.fromEntries(of('Function').map((f) => [f.name, f.instance]));
    const api = of('ApiGatewayV2')[0]!.instance;
    expect(outputs).toEqual({
      tableName: of('Dynamo')[0]!.instance.name,
      adminApiUrl: api.url,
      restAuthorizerArn: fns.RestAuthorizer.arn, restAuthorizerName: fns.RestAuthorizer.name,
      httpAuthorizerArn: fns.HttpAuthorizer.arn, httpAuthorizerName: fns.HttpAuthorizer.name,
      websocketAuthorizerArn: fns.WebSocketAuthorizer.arn, websocketAuthorizerName: fns.WebSocketAuthorizer.name,
      tokensFunctionArn: fns.Tokens.arn, tokensFunctionName: fns.Tokens.name,
      invitationsFunctionArn: fns.Invitations.arn, invitationsFunctionName: fns.Invitations.name,
      adminFunctionArn: fns.Admin.arn, adminFunctionName: fns.Admin.name,
    });
  });
});

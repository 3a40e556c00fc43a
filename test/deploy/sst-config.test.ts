import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TABLE_SCHEMA } from '../../core/store/schema';
import { ADMIN_ROUTES } from '../../functions/routes';

/** Recording stand-ins for SST's globals: every component records its name and arguments. */
function standIns(stage: string) {
  const created: { type: string; name: string; args: Record<string, any> }[] = [];
  const routes: { route: string; handler: unknown; auth: unknown }[] = [];
  const authorizers: Record<string, any>[] = [];
  const component = (type: string) =>
    class {
      name: string;
      arn: string;
      url: string;
      id = `${type}-id`;
      value: string;
      constructor(name: string, args: Record<string, any> = {}) {
        this.name = name;
        this.arn = `arn:${type}:${name}`;
        this.url = `https://${name}.example`;
        this.value = `secret:${name}`;
        created.push({ type, name, args });
      }
      addAuthorizer(args: Record<string, any>) {
        authorizers.push(args);
        return { id: `authorizer:${args.name}` };
      }
      route(route: string, handler: unknown, options: { auth?: unknown } = {}) {
        routes.push({ route, handler, auth: options.auth });
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

async function load(stage: string) {
  const rec = standIns(stage);
  const url = `${pathToFileURL(resolve('sst.config.ts')).href}?stage=${stage}`;
  const config = (await import(/* @vite-ignore */ url)).default as { app(i: { stage: string }): Record<string, unknown>; run(): Promise<Record<string, unknown>> };
  const app = config.app({ stage });
  const outputs = await config.run();
  return { ...rec, app, outputs };
}

describe('sst.config.ts wiring', () => {
  it('production retains and protects; other stages remove', async () => {
    expect((await load('production')).app).toMatchObject({ name: 'gatehouse', removal: 'retain', protect: true });
    expect((await load('dev')).app).toMatchObject({ removal: 'remove', protect: false });
  });

  it('the table comes from the one schema, with TTL on expiresAt, PITR, and deletion protection in production', async () => {
    for (const stage of ['production', 'dev']) {
      const { created } = await load(stage);
      const tables = created.filter((c) => c.type === 'Dynamo');
      expect(tables).toHaveLength(1);
      const t = tables[0]!.args;
      expect(t.ttl).toBe('expiresAt');
      expect(t.primaryIndex).toEqual({ hashKey: TABLE_SCHEMA.partitionKey, rangeKey: TABLE_SCHEMA.sortKey });
      expect(Object.keys(t.globalIndexes).sort()).toEqual(Object.keys(TABLE_SCHEMA.indexes).sort());
      expect(Object.keys(t.fields).sort()).toEqual(Object.keys(TABLE_SCHEMA.attributes).sort());
      const args: Record<string, any> = {};
      t.transform.table(args);
      expect(args.pointInTimeRecovery).toEqual({ enabled: true });
      expect(args.deletionProtectionEnabled).toBe(stage === 'production');
    }
  });

  it('six functions on Node.js 22 arm64, minified, linked to the table, settings from secrets', async () => {
    const { created } = await load('dev');
    const table = created.find((c) => c.type === 'Dynamo')!;
    const fns = created.filter((c) => c.type === 'Function');
    expect(fns.map((f) => f.args.handler).sort()).toEqual([
      'functions/admin.handler', 'functions/authorizer/http.handler', 'functions/authorizer/rest.handler',
      'functions/authorizer/websocket.handler', 'functions/invitations.handler', 'functions/tokens.handler',
    ]);
    for (const f of fns) {
      expect(f.args).toMatchObject({ runtime: 'nodejs22.x', architecture: 'arm64', nodejs: { minify: true } });
      expect(f.args.logging.retention).toBeDefined();
      expect(f.args.link).toHaveLength(1);
      expect(f.args.link[0].name).toBe(table.name);
      expect(f.args.environment.GATEHOUSE_TABLE).toBe(table.name);
      expect(String(f.args.environment.GATEHOUSE_ISSUERS)).toMatch(/^secret:/);
    }
  });

  it('every admin route reaches its function behind the gatehouse HTTP authorizer (route in the cache key)', async () => {
    const { routes, authorizers, created } = await load('dev');
    expect(authorizers).toHaveLength(1);
    const auth = authorizers[0]!;
    expect(auth.lambda.function).toBe('arn:Function:HttpAuthorizer');
    expect(auth.lambda.identitySources).toEqual(['$request.header.Authorization', '$context.routeKey']);
    expect(auth.lambda.response).toBe('simple');
    expect(routes.map((r) => r.route).sort()).toEqual(Object.keys(ADMIN_ROUTES).sort());
    const byName: Record<string, string> = { tokens: 'Tokens', invitations: 'Invitations', admin: 'Admin' };
    for (const r of routes) {
      expect(r.handler).toBe(`arn:Function:${byName[ADMIN_ROUTES[r.route as keyof typeof ADMIN_ROUTES]]}`);
      expect(r.auth).toEqual({ lambda: 'authorizer:gatehouse' });
    }
    expect(created.filter((c) => c.type === 'ApiGatewayV2')).toHaveLength(1);
  });

  it('outputs what other stacks need', async () => {
    const { outputs } = await load('dev');
    for (const k of ['tableName', 'adminApiUrl', 'restAuthorizerArn', 'restAuthorizerName', 'httpAuthorizerArn', 'httpAuthorizerName', 'websocketAuthorizerArn', 'websocketAuthorizerName']) {
      expect(outputs[k], k).toBeDefined();
    }
  });
});

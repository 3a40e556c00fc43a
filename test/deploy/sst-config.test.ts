import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TABLE_SCHEMA } from '../../core/store/schema';
import { METRIC_NAMES } from '../../core/metrics/gatehouse';
import { ADMIN_ROUTES } from '../../functions/routes';
import { ALARMS } from '../../infra/metrics';
import { NODEJS_BUILD } from '../../infra/handlers';

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
      dashboardName: string;
      constructor(name: string, args?: unknown) {
        this.name = `name:${type}:${name}`;
        this.arn = `arn:${type}:${name}`;
        this.url = `https://${name}.example`;
        this.value = `secret:${name}`;
        this.dashboardName = `dashboard:${name}`;
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
  // Outputs are plain values here: resolving one is applying the function to it.
  g.$resolve = (value: unknown) => ({ apply: (fn: (v: unknown) => unknown) => fn(value) });
  g.sst = {
    Secret: component('Secret'),
    aws: { Dynamo: component('Dynamo'), Function: component('Function'), ApiGatewayV2: component('ApiGatewayV2'), SnsTopic: component('SnsTopic') },
  };
  g.aws = {
    cloudwatch: { MetricAlarm: component('MetricAlarm'), Dashboard: component('Dashboard') },
    getRegionOutput: () => ({ region: 'eu-west-1' }),
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

  it.each(STAGES)('%s: seven functions on Node.js 22 arm64, minified and split as the tests and bench build them, linked to the table, settings from secrets', async (stage) => {
    const { of } = await load(stage);
    const table = of('Dynamo')[0]!.instance;
    const fns = of('Function');
    expect(fns.map((f) => f.args.handler).sort()).toEqual([
      'functions/admin.handler', 'functions/authorizer/http.handler', 'functions/authorizer/http.handler', 'functions/authorizer/rest.handler',
      'functions/authorizer/websocket.handler', 'functions/invitations.handler', 'functions/tokens.handler',
    ]);
    const secrets = Object.fromEntries(of('Secret').map((s) => [s.name, s]));
    expect(Object.keys(secrets).sort()).toEqual(['GatehouseCacheTtlSeconds', 'GatehouseIssuers', 'GatehouseLogLevel']);
    for (const f of fns) {
      // NODEJS_BUILD is what lambdaEsbuildOptions reproduces (test/deploy/bundle.test.ts, bench/run.ts).
      expect(f.args).toMatchObject({ runtime: 'nodejs22.x', architecture: 'arm64', nodejs: { format: 'esm', minify: true, splitting: true } });
      expect(f.args.nodejs).toEqual(NODEJS_BUILD);
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
    const byName = Object.fromEntries(fns.map((f) => [f.name, f.args.environment]));
    // The customer HTTP authorizer answers simply and reads whatever set the API is bound to;
    // the admin API's own copy is pinned to the built-in admin set and answers with IAM policies.
    expect(byName.HttpAuthorizer.GATEHOUSE_HTTP_RESPONSE).toBe('simple');
    expect(byName.HttpAuthorizer.GATEHOUSE_POLICY_SET).toBeUndefined();
    expect(byName.AdminAuthorizer.GATEHOUSE_HTTP_RESPONSE).toBe('iam');
    expect(byName.AdminAuthorizer.GATEHOUSE_POLICY_SET).toBe('admin');
    for (const f of fns.filter((x) => x.name !== 'AdminAuthorizer')) expect(f.args.environment.GATEHOUSE_POLICY_SET, f.name).toBeUndefined();
  });

  it.each(STAGES)('%s: every admin route reaches its function behind the admin-pinned HTTP authorizer, method and concrete path in the cache key', async (stage) => {
    const { routes, authorizers, of } = await load(stage);
    const apis = of('ApiGatewayV2');
    expect(apis).toHaveLength(1);
    const api = apis[0]!.instance;
    expect(authorizers).toHaveLength(1);
    const auth = authorizers[0]!;
    expect(auth.api).toBe(api.name);
    const adminFn = of('Function').find((f) => f.name === 'AdminAuthorizer')!.instance;
    expect(auth.args.lambda).toMatchObject({
      function: adminFn.arn,
      // An answer is reused for every request with these values: the concrete method
      // and path must be among them, not only the route template (DESIGN §5).
      identitySources: ['$request.header.Authorization', '$context.httpMethod', '$context.path'],
      response: 'iam',
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
    // admin: 21 endpoints, 9 for policy sets and API bindings, 4 for policy tests, history and rollback, 5 for a set's candidate (shadow mode).
    expect([count('tokens'), count('invitations'), count('admin')]).toEqual([10, 6, 39]);
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
      adminAuthorizerArn: fns.AdminAuthorizer.arn, adminAuthorizerName: fns.AdminAuthorizer.name,
      websocketAuthorizerArn: fns.WebSocketAuthorizer.arn, websocketAuthorizerName: fns.WebSocketAuthorizer.name,
      tokensFunctionArn: fns.Tokens.arn, tokensFunctionName: fns.Tokens.name,
      invitationsFunctionArn: fns.Invitations.arn, invitationsFunctionName: fns.Invitations.name,
      adminFunctionArn: fns.Admin.arn, adminFunctionName: fns.Admin.name,
      alarmTopicArn: of('SnsTopic')[0]!.instance.arn,
      dashboardName: of('Dashboard')[0]!.instance.dashboardName,
    });
  });

  it.each(STAGES)("%s: Lambda's own log filter lets every line through (GATEHOUSE_LOG_LEVEL decides), JSON format kept", async (stage) => {
    const { of } = await load(stage);
    for (const f of of('Function')) {
      expect(f.args.logging.format).toBe('json');
      // SST hands the transform the function's arguments with its logging config built.
      const args: Record<string, any> = { loggingConfig: { logFormat: 'JSON', logGroup: 'g' } };
      f.args.transform.function(args);
      expect(args.loggingConfig).toEqual({ logFormat: 'JSON', logGroup: 'g', applicationLogLevel: 'DEBUG' });
    }
  });

  it.each(STAGES)('%s: alarms on fail-closed failures, key-set failures and a spike in 401s or Denies, over the four authorizers, to one SNS topic', async (stage) => {
    const { of } = await load(stage);
    const topic = of('SnsTopic');
    expect(topic).toHaveLength(1);
    const fnName = (name: string) => of('Function').find((f) => f.name === name)!.instance.name;
    const authorizers = ['RestAuthorizer', 'HttpAuthorizer', 'AdminAuthorizer', 'WebSocketAuthorizer'].map(fnName).sort();
    const alarms: Record<string, any> = Object.fromEntries(of('MetricAlarm').map((a) => [a.args.name, a.args]));
    expect(Object.keys(alarms).sort()).toEqual([`gatehouse-${stage}-Denies-share`, `gatehouse-${stage}-FailClosed`, `gatehouse-${stage}-KeySetFailures`, `gatehouse-${stage}-Unauthorized-share`]);
    /** The metrics an alarm reads, as `Metric:FunctionName`, and its one returned expression. */
    const read = (a: any) => {
      const metrics = a.metricQueries.filter((q: any) => q.metric).map((q: any) => {
        expect(q.metric).toMatchObject({ namespace: 'Gatehouse', stat: 'Sum' });
        expect(Object.keys(q.metric.dimensions)).toEqual(['FunctionName']);
        return `${q.metric.metricName}:${q.metric.dimensions.FunctionName}`;
      });
      const returned = a.metricQueries.filter((q: any) => q.returnData);
      expect(returned).toHaveLength(1);
      return { metrics: metrics.sort(), expression: returned[0].expression as string };
    };
    for (const a of Object.values(alarms)) {
      expect(a.alarmActions).toEqual([topic[0]!.instance.arn]);
      expect(a.okActions).toEqual([topic[0]!.instance.arn]);
      expect(a.treatMissingData).toBe('notBreaching');
      expect(a.comparisonOperator).toBe('GreaterThanThreshold');
      expect(a.alarmDescription).toMatch(/docs\/operations\.md#/);
      for (const m of read(a).metrics) expect(METRIC_NAMES).toContain(m.split(':')[0]);
    }
    for (const metric of ['FailClosed', 'KeySetFailures']) {
      const a = alarms[`gatehouse-${stage}-${metric}`]!;
      const r = read(a);
      expect(r.metrics).toEqual(authorizers.map((n) => `${metric}:${n}`).sort());
      expect(r.expression).toBe('FILL(m0, 0) + FILL(m1, 0) + FILL(m2, 0) + FILL(m3, 0)');
      expect(a.threshold).toBe(0);
      expect(a.metricQueries[0].metric.period).toBe(60);
    }
    for (const [metric, spec] of [['Unauthorized', ALARMS.unauthorizedSpike], ['Denies', ALARMS.denySpike]] as const) {
      const a = alarms[`gatehouse-${stage}-${metric}-share`]!;
      const r = read(a);
      expect(r.metrics).toEqual([...authorizers.map((n) => `${metric}:${n}`), ...authorizers.map((n) => `Decisions:${n}`)].sort());
      expect(r.expression).toBe(`IF(d >= ${spec.minDecisions}, 100 * r / d, 0)`);
      expect(a.threshold).toBe(spec.thresholdPercent);
      expect(a.evaluationPeriods).toBe(spec.evaluationPeriods);
    }
  });

  it.each(STAGES)('%s: a dashboard of decisions, outcomes, refusal reasons, failures and latency, over the functions it deploys', async (stage) => {
    const { of } = await load(stage);
    const dashboards = of('Dashboard');
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0]!.args.dashboardName).toBe(`gatehouse-${stage}`);
    const body = JSON.parse(dashboards[0]!.args.dashboardBody) as { widgets: { type: string; properties: any }[] };
    const titles = body.widgets.map((w) => w.properties.title);
    for (const t of ['Decisions by outcome', 'Decisions by authorizer', '401s by reason class', 'Denies by reason class', 'Failures', 'latency', 'Cache hit ratio']) {
      expect(titles.some((x) => x.includes(t)), t).toBe(true);
    }
    const names = new Set(of('Function').map((f) => f.instance.name));
    const text = JSON.stringify(body);
    // Every metric and function named is real: a Gatehouse metric the code writes, or Lambda's own; a deployed function.
    for (const w of body.widgets.filter((x) => x.type === 'metric')) {
      expect(w.properties.region).toBe('eu-west-1');
      for (const row of w.properties.metrics as unknown[][]) {
        if (row[0] === 'Gatehouse') expect(METRIC_NAMES).toContain(row[1]);
        else if (row[0] === 'AWS/Lambda') expect(row[1]).toBe('Duration');
        else expect(typeof (row[0] as { expression?: string }).expression).toBe('string');
        const fi = row.indexOf('FunctionName');
        if (fi >= 0) expect(names.has(row[fi + 1] as string)).toBe(true);
      }
    }
    for (const m of text.matchAll(/MetricName=\\"([A-Za-z]+)\\"/g)) expect(METRIC_NAMES).toContain(m[1]);
    for (const m of text.matchAll(/FunctionName=\\"([^\\]+)\\"/g)) expect(names.has(m[1]!)).toBe(true);
    const alarmWidget = body.widgets.find((w) => w.type === 'alarm')!;
    expect(alarmWidget.properties.alarms.sort()).toEqual(of('MetricAlarm').map((a) => a.instance.arn).sort());
  });
});

/// <reference path="../.sst/platform/config.d.ts" />

/**
 * Stage settings come from SST secrets (set with `npx sst secret set <Name> <value> --stage <stage>`),
 * never from code: the trusted issuers, the cache TTL and the log level.
 */
function settings() {
  return {
    issuers: new sst.Secret('GatehouseIssuers', '[]'),
    cacheTtl: new sst.Secret('GatehouseCacheTtlSeconds', '30'),
    logLevel: new sst.Secret('GatehouseLogLevel', 'info'),
  };
}

/** The six Lambda functions, each linked to the table. */
export function functions(table: sst.aws.Dynamo) {
  const s = settings();
  const make = (name: string, handler: string, extra: Record<string, $util.Input<string>> = {}) =>
    new sst.aws.Function(name, {
      handler,
      runtime: 'nodejs22.x',
      architecture: 'arm64',
      memory: '512 MB',
      timeout: '10 seconds',
      link: [table],
      nodejs: { minify: true, format: 'esm' },
      logging: { retention: '1 month', format: 'json' },
      environment: {
        GATEHOUSE_TABLE: table.name,
        GATEHOUSE_ISSUERS: s.issuers.value,
        GATEHOUSE_CACHE_TTL_SECONDS: s.cacheTtl.value,
        GATEHOUSE_LOG_LEVEL: s.logLevel.value,
        ...extra,
      },
    });
  return {
    rest: make('RestAuthorizer', 'functions/authorizer/rest.handler'),
    http: make('HttpAuthorizer', 'functions/authorizer/http.handler', { GATEHOUSE_HTTP_RESPONSE: 'simple' }),
    websocket: make('WebSocketAuthorizer', 'functions/authorizer/websocket.handler'),
    tokens: make('Tokens', 'functions/tokens.handler'),
    invitations: make('Invitations', 'functions/invitations.handler'),
    admin: make('Admin', 'functions/admin.handler'),
  };
}

export type Functions = ReturnType<typeof functions>;

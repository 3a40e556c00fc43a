/// <reference path="../.sst/platform/config.d.ts" />
import { FUNCTIONS, NODEJS_BUILD, type FunctionKey, type FunctionSpec } from './handlers';

/**
 * Stage settings come from SST secrets (`npx sst secret set <Name> <value> --stage <stage>`),
 * never from code: the trusted issuers, the in-Lambda cache TTL and the log level.
 * Outside production each has a harmless placeholder so a dev stage deploys as is;
 * production has none for the issuers, so a production deploy stops until an operator
 * has set them explicitly (`'[]'` is a valid choice: gatehouse tokens only).
 */
function settings(production: boolean) {
  return {
    issuers: production ? new sst.Secret('GatehouseIssuers') : new sst.Secret('GatehouseIssuers', '[]'),
    cacheTtl: new sst.Secret('GatehouseCacheTtlSeconds', '30'),
    logLevel: new sst.Secret('GatehouseLogLevel', 'info'),
  };
}

/** The six Lambda functions: Node.js 22 on arm64, minified and split ESM (NODEJS_BUILD), each linked to the table. */
export function functions(table: sst.aws.Dynamo, production: boolean) {
  const s = settings(production);
  const make = (key: FunctionKey) => {
    const spec: FunctionSpec = FUNCTIONS[key];
    return new sst.aws.Function(spec.name, {
      handler: spec.handler,
      runtime: 'nodejs22.x',
      architecture: 'arm64',
      memory: '512 MB',
      timeout: '10 seconds',
      link: [table],
      nodejs: { ...NODEJS_BUILD },
      // JSON: our lines (written to stdout as JSON) stay structured, and Lambda's own lines are JSON too.
      logging: { retention: production ? '3 months' : '1 week', format: 'json' },
      transform: {
        function: (args) => {
          // Under the JSON format Lambda drops lines below its application log level (INFO
          // unless set), whatever GATEHOUSE_LOG_LEVEL says. DEBUG lets every line through and
          // leaves the choice to GATEHOUSE_LOG_LEVEL; a stricter Lambda level would also drop
          // the metrics, which are INFO lines.
          args.loggingConfig = { ...(args.loggingConfig as object), applicationLogLevel: 'DEBUG' } as typeof args.loggingConfig;
        },
      },
      environment: {
        GATEHOUSE_TABLE: table.name,
        GATEHOUSE_ISSUERS: s.issuers.value,
        GATEHOUSE_CACHE_TTL_SECONDS: s.cacheTtl.value,
        GATEHOUSE_LOG_LEVEL: s.logLevel.value,
        ...spec.environment,
      },
    });
  };
  return {
    rest: make('rest'),
    http: make('http'),
    adminAuthorizer: make('adminAuthorizer'),
    websocket: make('websocket'),
    tokens: make('tokens'),
    invitations: make('invitations'),
    admin: make('admin'),
  };
}

export type Functions = ReturnType<typeof functions>;

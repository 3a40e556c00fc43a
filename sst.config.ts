/// <reference path="./.sst/platform/config.d.ts" />

/**
 * gatehouse on AWS, per stage: one DynamoDB table (from the one schema), the three
 * authorizers, the token / invitation / admin functions, and an HTTP API for the
 * admin endpoints with the gatehouse HTTP authorizer on every route; alarms (to an SNS
 * topic) and a dashboard over the functions' metrics.
 * `npx sst deploy --stage <name>`; `production` retains and protects its data.
 */
export default $config({
  app(input) {
    const production = input?.stage === 'production';
    return {
      name: 'gatehouse',
      home: 'aws',
      removal: production ? 'retain' : 'remove',
      protect: production,
    };
  },
  async run() {
    const { table } = await import('./infra/table');
    const { functions } = await import('./infra/functions');
    const { adminApi } = await import('./infra/api');
    const { monitoring } = await import('./infra/monitoring');

    const production = $app.stage === 'production';
    const data = table(production);
    const fns = functions(data, production);
    const api = adminApi(fns);
    const ops = monitoring(fns);

    return {
      tableName: data.name,
      adminApiUrl: api.url,
      restAuthorizerArn: fns.rest.arn,
      restAuthorizerName: fns.rest.name,
      httpAuthorizerArn: fns.http.arn,
      httpAuthorizerName: fns.http.name,
      adminAuthorizerArn: fns.adminAuthorizer.arn,
      adminAuthorizerName: fns.adminAuthorizer.name,
      websocketAuthorizerArn: fns.websocket.arn,
      websocketAuthorizerName: fns.websocket.name,
      tokensFunctionArn: fns.tokens.arn,
      tokensFunctionName: fns.tokens.name,
      invitationsFunctionArn: fns.invitations.arn,
      invitationsFunctionName: fns.invitations.name,
      adminFunctionArn: fns.admin.arn,
      adminFunctionName: fns.admin.name,
      alarmTopicArn: ops.topic.arn,
      dashboardName: ops.dashboard.dashboardName,
    };
  },
});

/// <reference path="../.sst/platform/config.d.ts" />
import type { Functions } from './functions';
import { ALARMS, dashboardBody, NAMESPACE } from './metrics';

/** One metric of each function, summed (a function with no data counts 0), as alarm queries returning `id`. */
function summed(id: string, metric: string, functionNames: $util.Input<string>[], periodSeconds: number, returnData: boolean) {
  const parts = functionNames.map((name, i) => ({
    id: `${id}${i}`,
    metric: { namespace: NAMESPACE, metricName: metric, dimensions: { FunctionName: name }, period: periodSeconds, stat: 'Sum' },
    returnData: false,
  }));
  return [...parts, { id, expression: parts.map((p) => `FILL(${p.id}, 0)`).join(' + '), label: `${metric} (all authorizers)`, returnData }];
}

/**
 * The alarms (fail-closed failures, key-set failures, a spike in 401s or Denies), the
 * SNS topic they notify (subscribe to it: docs/operations.md), and a dashboard of
 * decisions, outcomes, refusal reasons, failures and latency.
 */
export function monitoring(fns: Functions) {
  const prefix = `${$app.name}-${$app.stage}`;
  const topic = new sst.aws.SnsTopic('Alarms');
  const authorizers = [fns.rest.name, fns.http.name, fns.adminAuthorizer.name, fns.websocket.name];
  const notify = { alarmActions: [topic.arn], okActions: [topic.arn], treatMissingData: 'notBreaching' };

  const countAlarm = (name: string, a: (typeof ALARMS)['failClosed' | 'keySetFailures'], description: string) =>
    new aws.cloudwatch.MetricAlarm(name, {
      name: `${prefix}-${a.metric}`,
      alarmDescription: description,
      comparisonOperator: 'GreaterThanThreshold',
      threshold: a.threshold,
      evaluationPeriods: a.evaluationPeriods,
      datapointsToAlarm: a.evaluationPeriods,
      metricQueries: summed('m', a.metric, authorizers, a.periodSeconds, true),
      ...notify,
    });

  const shareAlarm = (name: string, a: (typeof ALARMS)['unauthorizedSpike' | 'denySpike'], description: string) =>
    new aws.cloudwatch.MetricAlarm(name, {
      name: `${prefix}-${a.metric}-share`,
      alarmDescription: description,
      comparisonOperator: 'GreaterThanThreshold',
      threshold: a.thresholdPercent,
      evaluationPeriods: a.evaluationPeriods,
      datapointsToAlarm: a.evaluationPeriods,
      metricQueries: [
        ...summed('r', a.metric, authorizers, a.periodSeconds, false),
        ...summed('d', 'Decisions', authorizers, a.periodSeconds, false),
        // A share over few decisions is noise: below the minimum the share counts as 0.
        { id: 'share', expression: `IF(d >= ${a.minDecisions}, 100 * r / d, 0)`, label: `${a.metric} as % of decisions`, returnData: true },
      ],
      ...notify,
    });

  const alarms = {
    failClosed: countAlarm('FailClosedAlarm', ALARMS.failClosed, 'gatehouse failed closed (store or key-set failure): callers get 500s. Runbook: docs/operations.md#fail-closed'),
    keySetFailures: countAlarm('KeySetFailuresAlarm', ALARMS.keySetFailures, "An issuer's key set could not be loaded: its JWTs fail closed. Runbook: docs/operations.md#key-set-failures"),
    unauthorizedSpike: shareAlarm('UnauthorizedSpikeAlarm', ALARMS.unauthorizedSpike, '401s are over half of all decisions. Runbook: docs/operations.md#401-spike'),
    denySpike: shareAlarm('DenySpikeAlarm', ALARMS.denySpike, 'Denies are over half of all decisions. Runbook: docs/operations.md#deny-spike'),
  };

  const dashboard = new aws.cloudwatch.Dashboard('Dashboard', {
    dashboardName: prefix,
    dashboardBody: $resolve({
      region: aws.getRegionOutput().region,
      authorizers: { rest: fns.rest.name, http: fns.http.name, adminAuthorizer: fns.adminAuthorizer.name, websocket: fns.websocket.name },
      admin: { tokens: fns.tokens.name, invitations: fns.invitations.name, admin: fns.admin.name },
      alarmArns: Object.values(alarms).map((a) => a.arn),
    }).apply((resolved) => JSON.stringify(dashboardBody(resolved))),
  });

  return { topic, alarms, dashboard };
}

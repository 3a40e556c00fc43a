// The alarms' thresholds and the dashboard's body: plain data, no SST globals, so tests
// read them; infra/monitoring.ts creates the resources.
import { NAMESPACE } from '../core/metrics/gatehouse';

export { NAMESPACE };

/**
 * What the alarms watch and when they fire. Metrics come from the functions' EMF lines
 * (namespace `Gatehouse`, see docs/operations.md); each alarm sums the three authorizer
 * functions. The numbers are starting points: tune them here, per API's traffic.
 */
export const ALARMS = {
  /** Any fail-closed failure in a minute: a store or key-set outage is refusing callers. */
  failClosed: { metric: 'FailClosed', periodSeconds: 60, evaluationPeriods: 1, threshold: 0 },
  /** Any request refused because an issuer's key set could not be loaded, in a minute. */
  keySetFailures: { metric: 'KeySetFailures', periodSeconds: 60, evaluationPeriods: 1, threshold: 0 },
  /** 401s as a share of decisions, over 3 periods of 5 minutes with at least `minDecisions` each. */
  unauthorizedSpike: { metric: 'Unauthorized', periodSeconds: 300, evaluationPeriods: 3, thresholdPercent: 50, minDecisions: 20 },
  /** Denies as a share of decisions, likewise: a policy that denies everyone shows here. */
  denySpike: { metric: 'Denies', periodSeconds: 300, evaluationPeriods: 3, thresholdPercent: 50, minDecisions: 20 },
} as const;

type Widget = { type: string; x: number; y: number; width: number; height: number; properties: Record<string, unknown> };

/**
 * The dashboard: decisions by outcome and by authorizer, 401s and Denies by reason class,
 * failures, latency (Lambda's duration and DynamoDB's), cache hit ratio, and the alarms.
 * Plain data from resolved names, so tests can read it.
 */
export function dashboardBody(p: { region: string; authorizers: Record<string, string>; admin: Record<string, string>; alarmArns: string[] }): { widgets: Widget[] } {
  const auth = Object.entries(p.authorizers);
  const all = [...auth, ...Object.entries(p.admin)];
  const anyOf = (names: [string, string][]) => `(${names.map(([, n]) => `FunctionName="${n}"`).join(' OR ')})`;
  const search = (dims: string, metric: string, names: [string, string][], stat: string, period: number) =>
    `SEARCH('{${NAMESPACE},${dims}} MetricName="${metric}" ${anyOf(names)}', '${stat}', ${period})`;
  // Sum over the authorizers of one metric (with extra dimensions), as hidden queries and one expression.
  const sumAcross = (id: string, label: string, metric: string, extra: string[] = []) => [
    ...auth.map(([, name], i) => [NAMESPACE, metric, 'FunctionName', name, ...extra, { id: `${id}${i}`, visible: false }]),
    [{ expression: auth.map((_, i) => `FILL(${id}${i}, 0)`).join(' + '), label, id }],
  ];
  const metric = (title: string, metrics: unknown[], extra: Record<string, unknown> = {}) => ({ title, region: p.region, view: 'timeSeries', stat: 'Sum', period: 60, metrics, ...extra });
  const widgets: Widget['properties'][] = [
    metric(
      'Decisions by outcome (all authorizers)',
      [...sumAcross('a', 'allow', 'Decisions', ['Outcome', 'allow']), ...sumAcross('n', 'deny', 'Decisions', ['Outcome', 'deny']), ...sumAcross('u', 'unauthorized (401)', 'Decisions', ['Outcome', 'unauthorized']), ...sumAcross('e', 'error (fail closed)', 'Decisions', ['Outcome', 'error'])],
      { stacked: true },
    ),
    metric('Decisions by authorizer', auth.map(([label, name]) => [NAMESPACE, 'Decisions', 'FunctionName', name, { label }])),
    metric('401s by reason class', [[{ expression: search('FunctionName,ReasonClass', 'Unauthorized', auth, 'Sum', 300), id: 'u', label: '' }]], { period: 300 }),
    metric('Denies by reason class', [[{ expression: search('FunctionName,ReasonClass', 'Denies', auth, 'Sum', 300), id: 'd', label: '' }]], { period: 300 }),
    metric('Failures', [
      ...sumAcross('f', 'fail closed', 'FailClosed'),
      ...sumAcross('k', 'key-set failures', 'KeySetFailures'),
      ...sumAcross('c', 'answers cut to the current route', 'AnswersCutToRoute'),
      [{ expression: search('FunctionName', 'ApiFailures', Object.entries(p.admin), 'Sum', 60), id: 'api', label: 'admin API failures' }],
      [{ expression: search('FunctionName', 'DynamoDbThrottles', all, 'Sum', 60), id: 'thr', label: 'DynamoDB throttles' }],
    ]),
    metric('Authorizer latency (Lambda duration, p50 and p99, ms)', auth.flatMap(([label, name]) => [
      ['AWS/Lambda', 'Duration', 'FunctionName', name, { stat: 'p50', label: `${label} p50` }],
      ['AWS/Lambda', 'Duration', 'FunctionName', name, { stat: 'p99', label: `${label} p99` }],
    ])),
    metric('DynamoDB latency as the functions see it (p99, ms)', [[{ expression: search('FunctionName', 'DynamoDbLatency', all, 'p99', 60), id: 'ddb', label: '' }]]),
    metric('Cache hit ratio (%)', [
      [{ expression: search('FunctionName,Cache', 'CacheHits', all, 'Sum', 300), id: 'h', visible: false }],
      [{ expression: search('FunctionName,Cache', 'CacheMisses', all, 'Sum', 300), id: 'm', visible: false }],
      [{ expression: '100 * SUM(h) / (SUM(h) + SUM(m))', id: 'ratio', label: 'all caches' }],
    ], { period: 300 }),
  ];
  const laid: Widget[] = widgets.map((properties, i) => ({ type: 'metric', x: (i % 2) * 12, y: Math.floor(i / 2) * 6, width: 12, height: 6, properties }));
  laid.push({ type: 'alarm', x: 0, y: Math.ceil(widgets.length / 2) * 6, width: 24, height: 3, properties: { title: 'Alarms', alarms: p.alarmArns } });
  return { widgets: laid };
}

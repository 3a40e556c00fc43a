import { describe, expect, it } from 'vitest';
import { createLineWriter, createLogger, fromLambdaLogLevel, LogKeys, type LogLevel } from '../../core/log';
import { createRuntime } from '../../functions/runtime';
import { runInvocation, traceId } from '../../functions/lambda';
import { localClient } from '../support/dynamo';

const T = Date.UTC(2026, 10, 22, 12, 0, 0);

function capture(level: LogLevel = 'debug', keys?: LogKeys) {
  const lines: string[] = [];
  const writer = createLineWriter({ sink: (l) => lines.push(l), now: () => T, ...(keys ? { keys: () => keys } : {}) });
  return { lines, logger: createLogger({ level, writer }) };
}

describe('log lines', () => {
  it('Powertools order and names: level (upper case), message, timestamp, service, the invocation keys, then the fields at top level', () => {
    const keys = new LogKeys({ cold_start: false, function_request_id: 'req-1', xray_trace_id: '1-abc-def', correlation_id: 'apigw-1' });
    const { lines, logger } = capture('debug', keys);
    logger.info('authorizer.decision', { flavour: 'http', effect: 'deny', reason: 'no-route' });
    logger.error('authorizer.fail-closed', { reason: 'store-unavailable' });
    logger.warn('token.access-log-failed');
    logger.debug('authorizer.decision', { cached: true });
    expect(lines[0]).toBe(
      '{"level":"INFO","message":"authorizer.decision","timestamp":"2026-11-22T12:00:00.000Z","service":"gatehouse","cold_start":false,"function_request_id":"req-1","xray_trace_id":"1-abc-def","correlation_id":"apigw-1","flavour":"http","effect":"deny","reason":"no-route"}',
    );
    expect(lines.map((l) => JSON.parse(l).level)).toEqual(['INFO', 'ERROR', 'WARN', 'DEBUG']);
    expect(JSON.parse(lines[2]!)).toEqual({ level: 'WARN', message: 'token.access-log-failed', timestamp: '2026-11-22T12:00:00.000Z', service: 'gatehouse', cold_start: false, function_request_id: 'req-1', xray_trace_id: '1-abc-def', correlation_id: 'apigw-1' });
  });

  it('a field cannot overwrite a key of the line; it is kept under <name>_', () => {
    const { lines, logger } = capture();
    logger.error('x.failed', { level: 'INFO', message: 'forged', service: 'other', reason: 'r' });
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'ERROR', message: 'x.failed', service: 'gatehouse', level_: 'INFO', message_: 'forged', service_: 'other', reason: 'r' });
  });

  it('one event is one line, whatever its fields hold (no forged lines), and unserialisable fields do not lose the line', () => {
    const { lines, logger } = capture();
    logger.info('authorizer.decision', { path: '/a\n{"level":"ERROR","message":"forged"}\r\n', method: 'GET' });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    logger.error('authorizer.fail-closed', { circular, n: 10n });
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).not.toMatch(/[\n\r]/);
    expect(JSON.parse(lines[0]!).path).toBe('/a\n{"level":"ERROR","message":"forged"}\r\n');
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 'ERROR', message: 'authorizer.fail-closed', note: 'unserializable fields' });
  });

  it('the level threshold drops lines, but an active observer still sees every event (metrics do not depend on the log level)', () => {
    const seen: string[] = [];
    let active = false;
    const lines: string[] = [];
    const logger = createLogger({
      level: 'error',
      writer: createLineWriter({ sink: (l) => lines.push(l) }),
      observer: { active: () => active, observe: (level, message) => seen.push(`${level} ${message}`) },
    });
    expect(logger.enabled!('info')).toBe(false);
    logger.info('a');
    active = true;
    expect(logger.enabled!('debug')).toBe(true);
    logger.debug('b');
    logger.error('c');
    expect(seen).toEqual(['debug b', 'error c']);
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(['c']);
  });

  it("Lambda's level names map to ours", () => {
    expect(['TRACE', 'DEBUG', 'info', 'WARN', 'ERROR', 'FATAL', 'loud', undefined, ''].map(fromLambdaLogLevel)).toEqual(['debug', 'debug', 'info', 'warn', 'error', 'error', undefined, undefined, undefined]);
  });

  it('the X-Ray trace id is the Root of _X_AMZN_TRACE_ID', () => {
    expect(traceId('Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1')).toBe('1-5759e988-bd862e3fe1be46a994272793');
    expect(traceId(undefined)).toBeUndefined();
  });
});

describe('the runtime logger', () => {
  const build = (env: Record<string, string>) => {
    const lines: string[] = [];
    const rt = createRuntime({ GATEHOUSE_TABLE: 'gatehouse', ...env }, { client: localClient(), now: () => T, logSink: (l) => lines.push(l) });
    return { rt, lines };
  };

  it("honours AWS_LAMBDA_LOG_LEVEL when GATEHOUSE_LOG_LEVEL is unset, and GATEHOUSE_LOG_LEVEL when both are", () => {
    expect(build({ AWS_LAMBDA_LOG_LEVEL: 'DEBUG' }).rt.settings.logLevel).toBe('debug');
    expect(build({ AWS_LAMBDA_LOG_LEVEL: 'WARN' }).rt.settings.logLevel).toBe('warn');
    expect(build({ AWS_LAMBDA_LOG_LEVEL: 'DEBUG', GATEHOUSE_LOG_LEVEL: 'error' }).rt.settings.logLevel).toBe('error');
    expect(build({}).rt.settings.logLevel).toBe('info');
    const { rt, lines } = build({ AWS_LAMBDA_LOG_LEVEL: 'ERROR' });
    rt.logger.info('dropped');
    rt.logger.error('kept');
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(['kept']);
  });

  it("writes the current invocation's keys, and none outside an invocation", async () => {
    const { rt, lines } = build({});
    rt.logger.info('outside');
    await runInvocation({ keys: new LogKeys({ function_request_id: 'r-9', correlation_id: 'c-9' }) }, async () => {
      await Promise.resolve();
      rt.logger.info('inside');
    });
    const [outside, inside] = lines.map((l) => JSON.parse(l));
    expect(outside).not.toHaveProperty('function_request_id');
    expect(inside).toMatchObject({ message: 'inside', function_request_id: 'r-9', correlation_id: 'c-9' });
  });
});

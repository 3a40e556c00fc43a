import { createRuntime, type Runtime } from '../../functions/runtime';
import { freshTable } from './dynamo';
import { recording } from './log-scan';

/** A clock tests can freeze and move (milliseconds). */
export class TestClock {
  constructor(public ms: number = Date.UTC(2026, 10, 22, 12, 0, 0)) {}
  now = (): number => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
  get seconds(): number {
    return Math.floor(this.ms / 1000);
  }
}

/** A real runtime (real DynamoDB Local table, real handlers' wiring) with a frozen clock and captured logs. */
export async function testRuntime(
  options: { env?: Record<string, string>; ttl?: boolean; clock?: TestClock; fetch?: typeof fetch } = {},
): Promise<Runtime & { clock: TestClock; logs: string[]; tableName: string }> {
  const { client, tableName } = await freshTable({ ttl: options.ttl ?? true });
  const clock = options.clock ?? new TestClock();
  const logs: string[] = [];
  const rt = createRuntime(
    { GATEHOUSE_TABLE: tableName, GATEHOUSE_LOG_LEVEL: 'debug', ...options.env },
    { client, now: clock.now, logSink: recording((l) => logs.push(l)), ...(options.fetch ? { fetch: options.fetch } : {}) },
  );
  return Object.assign(rt, { clock, logs, tableName });
}

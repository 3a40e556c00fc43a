import { describe, expect, it } from 'vitest';
import { FailedAttemptLog } from '../../core/tokens/access-log';
import type { AccessLogAggregate } from '../../core/store/types';

/** The coalescer alone: an injected clock and a writer that keeps what it is given. */
function harness(options: { maxKeys?: number; failWrites?: () => boolean } = {}) {
  let ms = Date.UTC(2026, 10, 22, 12, 0, 0);
  const written: AccessLogAggregate[] = [];
  const log = new FailedAttemptLog({
    now: () => ms,
    write: async (a) => {
      if (options.failWrites?.()) throw Object.assign(new Error('down'), { code: 'store-unavailable' });
      written.push(a);
    },
    ...(options.maxKeys ? { maxKeys: options.maxKeys } : {}),
  });
  const attempt = (tokenId = 't1', extra: { ip?: string; reason?: string } = {}) =>
    log.record(tokenId, { at: Math.floor(ms / 1000), route: 'GET /x', reason: extra.reason ?? 'token-bad-secret', ...(extra.ip ? { sourceIp: extra.ip } : {}) });
  const total = (filter: (a: AccessLogAggregate) => boolean = () => true) => written.filter(filter).reduce((n, a) => n + a.count, 0);
  return { log, written, attempt, total, at: (t: number) => (ms = t), get ms() { return ms; } };
}

describe('FailedAttemptLog', () => {
  it('writes the first attempt of a key at once and holds the rest of the slot', async () => {
    const h = harness();
    await h.attempt();
    expect(h.written).toHaveLength(1);
    for (let i = 0; i < 99; i++) await h.attempt();
    expect(h.written).toHaveLength(1);
    expect(h.log.due()).toBe(false);
    h.at(h.ms + 10_000);
    expect(h.log.due()).toBe(true);
    await h.log.flush();
    expect(h.written).toHaveLength(2);
    expect(h.total()).toBe(100);
    expect(h.log.due()).toBe(false);
  });

  it('worst case: at most 7 writes per key per minute (one per 10 s slot, one after), counts exact', async () => {
    const h = harness();
    const start = h.ms;
    for (let i = 0; i < 6000; i++) {
      h.at(start + i * 10);
      await h.attempt();
    }
    h.at(start + 60_000);
    await h.log.flush();
    expect(h.written.length).toBeLessThanOrEqual(7);
    expect(h.total()).toBe(6000);
    expect(new Set(h.written.map((a) => a.minute)).size).toBe(1);
  });

  it('keys are (token, reason, source IP, minute)', async () => {
    const h = harness();
    await h.attempt('t1', { ip: '1.1.1.1' });
    await h.attempt('t1', { ip: '2.2.2.2' });
    await h.attempt('t1', { ip: '1.1.1.1', reason: 'token-revoked' });
    await h.attempt('t2', { ip: '1.1.1.1' });
    h.at(h.ms + 60_000);
    await h.attempt('t1', { ip: '1.1.1.1' });
    expect(h.written.map((a) => `${a.tokenId} ${a.reason} ${a.sourceIp} ${a.minute}`)).toHaveLength(5);
    expect(new Set(h.written.map((a) => `${a.tokenId} ${a.reason} ${a.sourceIp} ${a.minute}`)).size).toBe(5);
  });

  it('bounded memory: past maxKeys the oldest key is written out, nothing is lost', async () => {
    const h = harness({ maxKeys: 3 });
    for (let round = 0; round < 3; round++) for (let ip = 0; ip < 10; ip++) await h.attempt('t1', { ip: `10.0.0.${ip}` });
    h.at(h.ms + 60_000);
    await h.log.flush();
    expect(h.total()).toBe(30);
  });

  it('a failed write keeps its counts for the next write, even after the minute', async () => {
    let down = true;
    const h = harness({ failWrites: () => down });
    for (let i = 0; i < 5; i++) await h.attempt();
    h.at(h.ms + 60_000);
    await h.log.flush();
    expect(h.written).toHaveLength(0);
    down = false;
    h.at(h.ms + 10_000);
    expect(h.log.due()).toBe(true);
    await h.log.flush();
    expect(h.total()).toBe(5);
  });

  it('refuses an interval that does not divide a minute (a key would straddle slots)', () => {
    expect(() => new FailedAttemptLog({ now: () => 0, write: async () => {}, flushIntervalSeconds: 7 })).toThrow(/divide 60/);
  });
});

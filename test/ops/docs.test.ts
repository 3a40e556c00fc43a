import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DENY_CLASS_NAMES, UNAUTHORIZED_CLASS_NAMES } from '../../core/metrics/classes';
import { METRIC_NAMES } from '../../core/metrics/gatehouse';
import { ALARMS } from '../../infra/metrics';

const ROOT = resolve(import.meta.dirname, '../..');
const doc = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(ROOT, path)).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every event name the code logs (the admin API's `${name}.rejected|failed` for each of its three functions). */
function loggedEvents(): Set<string> {
  const events = new Set<string>();
  for (const file of [...sources('core'), ...sources('functions')]) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/logger\??(?:\.(?:debug|info|warn|error)|\[level\])\(\s*'([a-z-]+\.[a-z-]+)'/g)) events.add(m[1]!);
    for (const m of text.matchAll(/logger\??\.(?:info|error)\(`\$\{options\.name\}\.([a-z-]+)`/g)) for (const fn of ['tokens', 'invitations', 'admin']) events.add(`${fn}.${m[1]}`);
  }
  return events;
}

/** GitHub's anchors for the page's headings. */
const anchors = new Set([...doc.matchAll(/^#{1,4} (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));

describe('docs/operations.md', () => {
  it('lists every log event the code writes, with its fields', () => {
    const events = loggedEvents();
    expect(events.size).toBeGreaterThan(15);
    for (const e of events) expect(doc, e).toContain(`\`${e}\``);
  });

  it('lists every metric, every reason class and every alarm', () => {
    for (const m of METRIC_NAMES) expect(doc, m).toMatch(new RegExp(`^\\| [^|]*\`${m}\``, 'm'));
    for (const c of [...UNAUTHORIZED_CLASS_NAMES, ...DENY_CLASS_NAMES]) expect(doc, c).toContain(`\`${c}\``);
    for (const a of Object.values(ALARMS)) expect(doc, a.metric).toContain(`gatehouse-<stage>-${a.metric}`);
  });

  it('points nowhere outside the repository, and every anchor it or an alarm names exists', () => {
    expect(doc).not.toMatch(/https?:\/\//);
    expect(doc).not.toMatch(/\]\((?!#)/);
    for (const m of doc.matchAll(/\]\(#([^)]+)\)/g)) expect(anchors, m[1]).toContain(m[1]);
    const monitoring = readFileSync(join(ROOT, 'infra/monitoring.ts'), 'utf8');
    const named = [...monitoring.matchAll(/docs\/operations\.md#([a-z0-9-]+)/g)].map((m) => m[1]!);
    expect(named.length).toBe(4);
    for (const a of named) expect(anchors, a).toContain(a);
  });
});

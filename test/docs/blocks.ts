import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

/** The docs whose shell blocks must be run or checked by a test. */
export const DOCS = ['README.md', 'docs/admin-api.md', 'docs/cli.md', 'docs/configuration.md', 'docs/policies.md', 'docs/tokens.md'];

export interface Block {
  file: string;
  /** 0-based among the file's ```sh blocks. */
  index: number;
  /** The heading the block sits under. */
  heading: string;
  text: string;
}

/** Every ```sh block of a file, with the heading above it. */
export function shBlocks(file: string): Block[] {
  const text = readFileSync(resolve(ROOT, file), 'utf8');
  const out: Block[] = [];
  const re = /```sh\n([\s\S]*?)```/g;
  for (let m = re.exec(text), i = 0; m; m = re.exec(text), i++) {
    // Headings outside code blocks only (a shell comment starts with # too).
    const before = text.slice(0, m.index).replace(/```[\s\S]*?```/g, '');
    const heading = [...before.matchAll(/^#{1,4} (.+)$/gm)].at(-1)?.[1] ?? '';
    out.push({ file, index: i, heading, text: m[1]! });
  }
  return out;
}

/** A block by file and heading (the first under it, or the n-th). */
export function block(file: string, heading: string, nth = 0): Block {
  const b = shBlocks(file).filter((x) => x.heading === heading)[nth];
  if (!b) throw new Error(`${file}: no sh block #${nth} under "${heading}"`);
  return b;
}

/**
 * How each block is kept from rotting. Every block of DOCS must be listed here
 * (test/docs/commands.test.ts fails on one that is not): `e2e` blocks run against a
 * real `npm start` in test/e2e/cli-docs.test.ts (the README's curl block in
 * test/e2e/npm-start.test.ts), `e2e-policy` blocks (the policy-set workflow) run in
 * order in one session against a real stack in test/e2e/cli-policy.test.ts, `offline`
 * blocks run in test/docs/commands.test.ts,
 * and `aws` blocks (they need an AWS account) are checked there without running.
 */
export const BLOCK_CHECKS: { file: string; heading: string; nth?: number; how: 'e2e' | 'e2e-curl' | 'e2e-policy' | 'offline' | 'scripts' | 'aws' }[] = [
  { file: 'README.md', heading: 'Quick start', how: 'scripts' },
  { file: 'README.md', heading: 'Try it locally', how: 'e2e-curl' },
  { file: 'README.md', heading: 'Try it locally', nth: 1, how: 'e2e' },
  { file: 'README.md', heading: 'Deploy (SST)', how: 'aws' },
  { file: 'docs/admin-api.md', heading: 'Retrying a token creation', how: 'e2e' },
  { file: 'docs/cli.md', heading: 'Running it', how: 'offline' },
  { file: 'docs/cli.md', heading: 'Where it connects, with what', how: 'e2e' },
  { file: 'docs/cli.md', heading: 'Commands', how: 'e2e' },
  { file: 'docs/cli.md', heading: 'Output for scripts', how: 'e2e' },
  { file: 'docs/policies.md', heading: 'Worked example: readable by org members, deletable by org admins, only for the `platform` group', how: 'e2e-policy' },
  { file: 'docs/cli.md', heading: 'Policy sets', how: 'e2e-policy' },
  { file: 'docs/cli.md', heading: 'Policy sets', nth: 1, how: 'e2e-policy' },
  { file: 'docs/cli.md', heading: 'Policy sets', nth: 2, how: 'e2e-policy' },
  { file: 'docs/policies.md', heading: 'Tests guard every write', how: 'e2e-policy' },
  { file: 'docs/policies.md', heading: 'History and rollback', how: 'e2e-policy' },
  { file: 'docs/policies.md', heading: 'Shadow mode: try a change on live traffic', how: 'e2e-policy' },
  { file: 'docs/policies.md', heading: 'Shadow mode: try a change on live traffic', nth: 1, how: 'e2e-policy' },
  { file: 'docs/tokens.md', heading: 'The checksum, worked through', how: 'offline' },
];

/** A block adapted to a stack: its address, its data directory, and short waits for its 1 s caches. */
export function adapt(text: string, url: string, dataDir: string): string {
  return text.replaceAll('http://127.0.0.1:3000', url).replaceAll('.gatehouse/', `${dataDir}/`).replace(/^sleep \d+$/gm, 'sleep 3');
}

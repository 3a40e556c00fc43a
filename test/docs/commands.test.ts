/**
 * No command shown in the README or docs/ rots unchecked: every ```sh block is listed in
 * BLOCK_CHECKS and is run (here, or against a real stack in test/e2e/cli-docs.test.ts),
 * or, when it needs an AWS account, checked without running.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveCommand } from '../../cli/main';
import { parseArgs } from '../../scripts/bootstrap-admin';
import { block, BLOCK_CHECKS, DOCS, shBlocks } from './blocks';

const ROOT = resolve(import.meta.dirname, '../..');
const scripts = Object.keys((JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);

/** Shell words of one command line (quotes respected; variables left as they are). */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

describe('shell blocks of the README and docs/', () => {
  it('every block is listed in BLOCK_CHECKS, and every listed block exists', () => {
    const all = DOCS.flatMap(shBlocks);
    const listed = BLOCK_CHECKS.map((c) => block(c.file, c.heading, c.nth ?? 0));
    for (const b of all) expect(listed.some((l) => l.file === b.file && l.index === b.index), `${b.file} block #${b.index} under "${b.heading}"`).toBe(true);
  });

  it('every block parses as bash', () => {
    for (const b of DOCS.flatMap(shBlocks)) {
      const r = spawnSync('bash', ['-n'], { input: b.text, encoding: 'utf8' });
      expect(r.status, `${b.file} "${b.heading}": ${r.stderr}`).toBe(0);
    }
  });

  it('every gatehouse command in them exists, with options it takes; every npm script exists', () => {
    for (const b of DOCS.flatMap(shBlocks)) {
      for (const line of b.text.split('\n')) {
        for (const m of line.matchAll(/npm run(?: -s)? ([a-z:-]+)/g)) expect(scripts, `${b.file}: ${line}`).toContain(m[1]);
        const at = line.indexOf('npx gatehouse ');
        if (at < 0) continue;
        const argv = words(line.slice(at + 'npx gatehouse '.length).split(/[|;)]|&&|2>/)[0]!);
        if (argv[0] === '--help') continue;
        const { command } = resolveCommand(argv);
        expect(command, `${b.file}: ${line}`).toBeDefined();
        const declared = new Set(['help', 'url', 'token', 'token-file', 'json', 'field', 'debug', ...Object.keys(command!.spec.options ?? {})]);
        for (const w of argv) if (w.startsWith('--')) expect(declared.has(w.slice(2).split('=')[0]!), `${b.file}: ${line}: ${w}`).toBe(true);
      }
    }
  });

  it('offline blocks run as written', () => {
    for (const c of BLOCK_CHECKS.filter((x) => x.how === 'offline')) {
      const b = block(c.file, c.heading, c.nth ?? 0);
      const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', b.text], { cwd: ROOT, encoding: 'utf8', timeout: 90_000, env: { ...process.env, NODE_OPTIONS: '' } });
      expect(r.status, `${c.file} "${c.heading}": ${r.stderr}`).toBe(0);
      if (c.file === 'docs/tokens.md') expect(r.stdout).toBe('checksum ok\n');
    }
  }, 120_000);

  it('the AWS blocks use documented flags: bootstrap-admin\'s parse, sst commands are the ones SST has', () => {
    for (const c of BLOCK_CHECKS.filter((x) => x.how === 'aws')) {
      for (const line of block(c.file, c.heading, c.nth ?? 0).text.split('\n').filter((l) => l.trim())) {
        if (line.includes('bootstrap-admin')) {
          const argv = words(line.slice(line.indexOf(' -- ') + 4).split(/\s>\s/)[0]!);
          expect(parseArgs(argv.map((w) => (w.startsWith('$') ? 'x' : w)), {}), line).toMatchObject({ tableName: 'x' });
        } else expect(line, line).toMatch(/^npx sst (secret set|deploy) /);
      }
    }
  });

  it('the quick start names npm scripts that exist', () => {
    for (const line of block('README.md', 'Quick start').text.split('\n').filter((l) => l.trim())) {
      for (const m of line.matchAll(/npm (?:run )?([a-z:-]+)/g)) if (!['install', 'run'].includes(m[1]!)) expect(scripts, line).toContain(m[1]);
    }
  });
});

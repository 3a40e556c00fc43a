#!/usr/bin/env node
// `gatehouse` (package.json "bin"). From a clone, the TypeScript sources run through the
// repository's own tsx (no build step); an installed copy without tsx runs the bundle
// `npm run build:cli` writes to dist/gatehouse.mjs.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'dist', 'gatehouse.mjs');
let api;
try {
  api = await import('tsx/esm/api');
} catch {
  api = undefined;
}
if (api) {
  api.register();
  const { main } = await import(pathToFileURL(join(root, 'cli', 'main.ts')).href);
  await main();
} else if (existsSync(bundle)) {
  const { main } = await import(pathToFileURL(bundle).href);
  await main();
} else {
  process.stderr.write('gatehouse: neither tsx (npm install in the repository) nor dist/gatehouse.mjs (npm run build:cli) is there\n');
  process.exit(2);
}

// `npm run test:durations`: writes test/durations.json (seconds per test file) from vitest's cache of the last
// run, for test/harness/sequencer.ts to start the longest files first on a fresh clone. Run after a full `npm test`.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.join(import.meta.dirname, '..', '..');
// The cache of another checkout's run may be named: `npm run test:durations -- /tmp/fresh/node_modules/.vite/vitest`.
const cacheDir = process.argv[2] ?? path.join(root, 'node_modules', '.vite', 'vitest');
const durations: Record<string, number> = {};
for (const dir of readdirSync(cacheDir)) {
  const { results } = JSON.parse(readFileSync(path.join(cacheDir, dir, 'results.json'), 'utf8')) as {
    results: [string, { duration: number }][];
  };
  for (const [key, { duration }] of results) {
    const file = key.slice(key.indexOf(':') + 1);
    if (existsSync(path.join(root, file))) durations[file] = Math.round(duration / 100) / 10; // not a file since removed
  }
}
const sorted = Object.fromEntries(Object.entries(durations).sort(([a, x], [b, y]) => y - x || a.localeCompare(b)));
writeFileSync(path.join(root, 'test', 'durations.json'), `${JSON.stringify(sorted, null, 2)}\n`);
console.log(
  `test/durations.json: ${Object.keys(sorted).length} files, ${Object.values(sorted)
    .reduce((s, d) => s + d, 0)
    .toFixed(0)} s in all`,
);

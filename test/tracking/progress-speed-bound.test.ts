// A cold-started module's progress file (executors/local/progress-file.ts) holds a bounded amount of disk however much
// the module logs: the part the host has read is punched out as it goes, and every byte still reaches the host in order.
import { mkdtempSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openProgressFile } from '../../executors/local/progress-file';

const dir = mkdtempSync(path.join(tmpdir(), 'atelier-progress-bound-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('gives back the disk of what the host has read, losing no byte', async () => {
  const MiB = 1 << 20;
  const file = openProgressFile(dir, { punchEveryBytes: MiB });
  const chunks: Buffer[] = [];
  let received = 0;
  file.follow((chunk) => {
    chunks.push(chunk);
    received += chunk.length;
  });
  // 16 MiB of numbered lines, written as a module would (appends on its descriptor), while the host tails them.
  const line = (i: number) => `${JSON.stringify({ series: [{ name: 'loss', steps: [i], values: [i / 7] }] }).padEnd(1023, ' ')}\n`;
  const LINES = 16 * 1024;
  for (let i = 0; i < LINES; i++) writeSync(file.writeFd, line(i));
  const deadline = Date.now() + 20_000;
  while ((received < LINES * 1024 || file.allocatedBytes() > 4 * MiB) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  // Read to the end, and at most a few MiB still on disk (what was read since the last punch, a page's rest).
  expect(received).toBe(LINES * 1024);
  expect(file.allocatedBytes()).toBeLessThanOrEqual(4 * MiB);
  await file.finish();
  const text = Buffer.concat(chunks).toString('utf8');
  const lines = text.split('\n').slice(0, -1);
  expect(lines).toHaveLength(LINES);
  for (const i of [0, 1, 4095, 8192, LINES - 1]) expect(lines[i]).toBe(line(i).slice(0, -1));
});

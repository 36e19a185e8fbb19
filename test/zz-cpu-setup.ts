import { appendFileSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';

let cpu = process.cpuUsage();
beforeAll(() => {
  cpu = process.cpuUsage();
});
afterAll(() => {
  const u = process.cpuUsage(cpu);
  appendFileSync(
    '/tmp/exp-cpu.txt',
    `${process.env.ATELIER_TEST_PG ? 'pg' : 'pglite'} ${expect.getState().testPath} ${((u.user + u.system) / 1e6).toFixed(1)} s\n`,
  );
});

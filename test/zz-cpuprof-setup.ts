import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { afterAll, beforeAll, expect } from 'vitest';

const s = new Session();
beforeAll(async () => {
  s.connect();
  await s.post('Profiler.enable');
  await s.post('Profiler.setSamplingInterval', { interval: 500 });
  await s.post('Profiler.start');
});
afterAll(async () => {
  const { profile } = await s.post('Profiler.stop');
  writeFileSync(`/tmp/file-${expect.getState().testPath!.split('/').pop()}.cpuprofile`, JSON.stringify(profile));
});

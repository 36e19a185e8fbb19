// An executor's own slots (`Executor.maxConcurrency`) on the host, over the in-process bus: its attempts run up to
// its own count plus the host's slots once its own are full, on the pool named after it, while an executor that
// declares nothing keeps to the host's slots; and a `workdir: false` executor's attempts leave no directory behind.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { defineExecutor, type Executor } from '../../plugins/sdk';
import { createHostWorld, createScratch, type HostWorld, makeTask } from '../plugins/host-harness';

let scratch: ReturnType<typeof createScratch>;
let world: HostWorld;
let workRoot: string;
/** The attempts' folders, in the host's own folder under the work root (`host-<pid>-…`). */
const attemptFolders = () => (existsSync(workRoot) ? readdirSync(workRoot) : []).flatMap((own) => readdirSync(path.join(workRoot, own)));
const attemptFolderExists = (name: string) => attemptFolders().includes(name);

beforeEach(async () => {
  scratch = createScratch();
  workRoot = path.join(scratch.root, 'work');
  world = await createHostWorld(workRoot);
});
afterEach(async () => {
  await world.close();
  scratch.remove();
});

/** An executor whose attempts wait until released, counting how many run at once. */
function gated(name: string, declared: Partial<Pick<Executor, 'maxConcurrency' | 'workdir'>>) {
  const state = { running: 0, peak: 0, workdirs: [] as boolean[], release: () => {} };
  let gate = new Promise<void>((r) => (state.release = r));
  const executor = defineExecutor<null>({
    name,
    ...declared,
    async submit(task) {
      state.peak = Math.max(state.peak, ++state.running);
      state.workdirs.push(attemptFolderExists(`${task.taskId}-${task.attempt}`));
      return null;
    },
    async wait() {
      await gate;
      state.running--;
      return { state: 'SUCCEEDED' as const };
    },
    async cancel() {},
  });
  return {
    executor,
    state,
    open() {
      state.release();
      gate = Promise.resolve();
    },
  };
}

async function until(probe: () => boolean, what: string) {
  const deadline = Date.now() + 10_000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

it("runs an executor's attempts up to its own slots plus the host's, and no more", async () => {
  const light = gated('light', { maxConcurrency: 3, workdir: false });
  await world.startHost([light.executor], { maxConcurrency: 1, pools: ['light'] });
  const tasks = await Promise.all(Array.from({ length: 8 }, () => world.submit(makeTask({ executor: 'light', pool: 'light' }))));
  await until(() => light.state.running === 4, '4 attempts running');
  // Held a while longer: a fifth would have started by now if the host let it.
  await new Promise((r) => setTimeout(r, 200));
  expect(light.state.peak).toBe(4);
  light.open();
  for (const task of tasks) await world.result(task.taskId);
  expect(light.state.peak).toBe(4);
  // No work directory was made for any of them.
  expect(light.state.workdirs.every((existed) => !existed)).toBe(true);
  expect(attemptFolders()).toEqual([]);
});

it("keeps an executor that declares nothing to the host's slots, with a work directory per attempt", async () => {
  const plain = gated('plain', {});
  await world.startHost([plain.executor], { maxConcurrency: 2, pools: ['plain'] });
  const tasks = await Promise.all(Array.from({ length: 5 }, () => world.submit(makeTask({ executor: 'plain', pool: 'plain' }))));
  await until(() => plain.state.running === 2, '2 attempts running');
  await new Promise((r) => setTimeout(r, 200));
  expect(plain.state.peak).toBe(2);
  plain.open();
  for (const task of tasks) await world.result(task.taskId);
  expect(plain.state.workdirs.every((existed) => existed)).toBe(true);
});

// The executor host bounds the bytes of task messages it holds per pool, not only their count: a flood of large task
// messages was taken up to its slots (here 64; an executor's own slots add more, the noop executor's 256), whatever
// each message weighs. On the in-process bus of the embedded default the host now holds no more than its bound (the
// messages' JSON text), the rest wait on the bus, and every task still runs. Counted, not timed: the attempts held at
// once are those submitted and not yet let finish.
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineExecutor, type TaskMessage } from '../../plugins/sdk';
import { createHostWorld, createScratch, type HostWorld, makeTask, waitFor } from './host-harness';

const BOUND = 256 * 1024;
const TASKS = 40;
const SLOTS = 64;

let scratch: ReturnType<typeof createScratch>;
let world: HostWorld;

beforeAll(async () => {
  scratch = createScratch();
  world = await createHostWorld(path.join(scratch.root, 'work'));
});
afterAll(async () => {
  await world.close();
  scratch.remove();
});

it('holds no more bytes of large task messages than its bound, however many slots it has, and runs them all', async () => {
  /** The attempts running (submitted, not yet let finish), in the order they began, with their message's size. */
  const held: { taskId: string; bytes: number; finish: () => void }[] = [];
  const began = new Set<string>();
  const holding = defineExecutor({
    name: 'holding',
    submit: async (task: TaskMessage) => task.taskId,
    wait: (taskId: string, task: TaskMessage) =>
      new Promise((resolve) => {
        began.add(taskId);
        held.push({ taskId, bytes: JSON.stringify(task).length, finish: () => resolve({ state: 'SUCCEEDED' }) });
      }),
    cancel: async () => undefined,
  });
  await world.startHost([holding], { maxConcurrency: SLOTS, maxInFlightBytes: BOUND });
  // Messages of ~60 KB each (a large parameter): four fit the bound, forty the slots.
  const tasks = Array.from({ length: TASKS }, () => makeTask({ executor: 'holding', parameters: { blob: 'x'.repeat(60_000) } }));
  const size = JSON.stringify(tasks[0]).length;
  for (const task of tasks) await world.submit(task);

  let most = 0;
  const heldBytes = () => held.reduce((sum, h) => sum + h.bytes, 0);
  for (let finished = 0; finished < TASKS; finished++) {
    // The host has taken what fits: no room for one more message (or every task has begun).
    await waitFor(() => heldBytes() + size > BOUND || began.size === TASKS, 'the host to take what fits');
    most = Math.max(most, heldBytes());
    expect(heldBytes()).toBeLessThanOrEqual(BOUND);
    const first = held.shift()!;
    first.finish();
    await world.result(first.taskId);
  }
  expect(began.size).toBe(TASKS);
  for (const task of tasks) expect(world.resultOf(task.taskId)).toMatchObject({ outcome: { state: 'SUCCEEDED' } });
  // A bound at all: more than one message was held at once.
  expect(most).toBeGreaterThan(size);
});

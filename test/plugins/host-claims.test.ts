// The executor host claims each attempt from the control plane before running it (AttemptClaim over the bus): a
// finished or superseded attempt is acked and dropped without a word, and with no answer nothing runs.
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNoopExecutor, type NoopHandle } from '../../executors/noop/index';
import { claimAction } from '../../plugins/host/attempt';
import { type AttemptClaim, type ClaimAnswer, SEQ_BLOCK } from '../../plugins/protocol';
import type { Executor } from '../../plugins/sdk';
import { createHostWorld, createScratch, type HostWorld, makeTask, waitFor } from './host-harness';

let scratch: ReturnType<typeof createScratch>;
let world: HostWorld;
let submits: string[];

beforeEach(async () => {
  scratch = createScratch();
  world = await createHostWorld(path.join(scratch.root, 'work'));
  submits = [];
});
afterEach(async () => {
  await world.close();
  scratch.remove();
});

function countingNoop(): Executor {
  const inner = createNoopExecutor();
  return {
    ...inner,
    async submit(task, ctx) {
      submits.push(`${task.taskId}:${task.attempt}`);
      return inner.submit(task, ctx);
    },
  };
}

describe('claimAction', () => {
  it('runs what the control plane says is current, drops what it says is not, and asks again without an answer', () => {
    expect(claimAction({ verdict: 'run' })).toBe('run');
    expect(claimAction({ verdict: 'drop', reason: 'finished', status: 'SUCCEEDED' })).toBe('drop');
    expect(claimAction({ verdict: 'drop', reason: 'superseded' })).toBe('drop');
    expect(claimAction(undefined)).toBe('ask-later');
  });
});

describe('executor host claims', () => {
  it('runs an attempt the control plane says is current', async () => {
    const claims: AttemptClaim[] = [];
    await world.bus.serveClaims(async (claim) => {
      claims.push(claim);
      return { verdict: 'run' };
    });
    await world.startHost([countingNoop()], { verifyClaims: true });
    const task = await world.submit(makeTask({ executor: 'noop' }));
    expect((await world.result(task.taskId)).outcome.state).toBe('SUCCEEDED');
    // noop runs no module code (Executor.tracking false): its claim asks for no MLflow task token. It asks for an
    // execution number (protocol 4); this control plane answers none, so the delivery count numbers its events.
    expect(claims).toEqual([{ taskId: task.taskId, runId: task.runId, attempt: 1, host: 'test-host', tracking: false, execution: null }]);
    expect(submits).toEqual([`${task.taskId}:1`]);
  });

  it('ends an attempt’s duration where its executor says the work ended, not when the host is done reading after it', async () => {
    await world.bus.serveClaims(async () => ({ verdict: 'run' }));
    let ended = 0;
    const inner = createNoopExecutor();
    const lateReader: Executor = {
      ...inner,
      // The module "exits" at once; the host then spends a while on what it left behind (a training loop's points).
      async wait(handle, task, ctx) {
        const outcome = await inner.wait(handle as NoopHandle, task, ctx);
        ended = Date.now();
        await new Promise((r) => setTimeout(r, 300));
        return { ...outcome, endedAt: ended };
      },
    };
    await world.startHost([lateReader], { verifyClaims: true });
    const before = Date.now();
    const task = await world.submit(makeTask({ executor: 'noop' }));
    const { durationMs: spent, outcome } = await world.result(task.taskId);
    expect(outcome.state).toBe('SUCCEEDED');
    expect(outcome).not.toHaveProperty('endedAt'); // taken off before the result is published
    // The attempt started after `before`, so a duration ending at `ended` is at most this; the 300 ms after are not in it.
    expect(spent).toBeLessThanOrEqual(ended - before);
  });

  it.each([
    { verdict: 'drop', reason: 'finished', status: 'SUCCEEDED' },
    { verdict: 'drop', reason: 'superseded', status: 'RUNNING' },
    { verdict: 'drop', reason: 'unknown' },
  ] satisfies ClaimAnswer[])('acks and drops an attempt the control plane answers with %o, reporting nothing', async (answer) => {
    await world.bus.serveClaims(async () => answer);
    await world.startHost([countingNoop()], { verifyClaims: true });
    const task = await world.submit(makeTask({ executor: 'noop' }));
    await waitFor(() => world.timeline.includes(`ack:${task.taskId}`), 'the ack');
    expect(submits).toEqual([]);
    expect(world.eventsOf(task.taskId)).toEqual([]);
  });

  it('asks again after a slow download, and runs nothing when the attempt finished meanwhile', async () => {
    // The chaos suite's case: the archive download retried while a control plane restarted, and the attempt
    // (redelivered) had succeeded elsewhere by the time it came: a claim answered before the download is stale.
    const answers: ClaimAnswer[] = [{ verdict: 'run' }, { verdict: 'drop', reason: 'finished', status: 'SUCCEEDED' }];
    await world.bus.serveClaims(async () => answers.shift() ?? { verdict: 'drop', reason: 'finished', status: 'SUCCEEDED' });
    const ran: string[] = [];
    const fetching: Executor = {
      ...countingNoop(),
      async submit(task, ctx) {
        submits.push(`${task.taskId}:${task.attempt}`);
        await ctx.artifactPath();
        ran.push(task.taskId);
        return createNoopExecutor().submit(task, ctx);
      },
    };
    world.artifacts.add('sha256:slow', __filename);
    await world.startHost([fetching], { verifyClaims: true });
    const task = await world.submit(makeTask({ executor: 'noop', module: { digest: 'sha256:slow' } }));
    await waitFor(() => world.timeline.includes(`ack:${task.taskId}`), 'the ack');
    expect(submits).toEqual([`${task.taskId}:1`]);
    expect(ran).toEqual([]);
    expect(world.eventsOf(task.taskId)).toEqual([]);
  });

  it('numbers the execution’s events from the number its claim got, and keeps the number when it asks again after the download', async () => {
    const claims: AttemptClaim[] = [];
    await world.bus.serveClaims(async (claim) => {
      claims.push(claim);
      return { verdict: 'run', protocol: 4, execution: claim.execution ?? 2 };
    });
    const fetching: Executor = {
      ...countingNoop(),
      async submit(task, ctx) {
        await ctx.artifactPath();
        return createNoopExecutor().submit(task, ctx);
      },
    };
    world.artifacts.add('sha256:fetched', __filename);
    await world.startHost([fetching], { verifyClaims: true });
    const task = await world.submit(makeTask({ executor: 'noop', module: { digest: 'sha256:fetched' } }));
    const result = await world.result(task.taskId);
    expect(claims.map((c) => c.execution)).toEqual([null, 2]);
    expect(Math.floor(result.seq / SEQ_BLOCK)).toBe(2);
    expect(world.eventsOf(task.taskId).every((e) => Math.floor(e.seq / SEQ_BLOCK) === 2)).toBe(true);
  });

  it('runs nothing while no control plane answers, and runs the attempt once one does', async () => {
    await world.startHost([countingNoop()], { verifyClaims: true });
    const task = await world.submit(makeTask({ executor: 'noop' }));
    await waitFor(() => world.timeline.includes(`nak:${task.taskId}`), 'the nak');
    expect(submits).toEqual([]);
    await world.bus.serveClaims(async () => ({ verdict: 'run' }));
    expect((await world.result(task.taskId, 15_000)).outcome.state).toBe('SUCCEEDED');
    expect(submits).toEqual([`${task.taskId}:1`]);
  }, 30_000);

  it('runs nothing when the answer fails, as if none came', async () => {
    await world.bus.serveClaims(async () => {
      throw new Error('database down');
    });
    await world.startHost([countingNoop()], { verifyClaims: true });
    const task = await world.submit(makeTask({ executor: 'noop' }));
    await waitFor(() => world.timeline.includes(`nak:${task.taskId}`), 'the nak');
    expect(submits).toEqual([]);
    expect(world.eventsOf(task.taskId)).toEqual([]);
  });

  // A cancel committed by one control plane can reach the host before the attempt's message, whose claim the control
  // plane that dispatched it may answer from its reservation (server/orchestrator/reservations.ts), run, not knowing.
  it('drops a delivery whose cancel came before it, though its claim would be answered run; other attempts run', async () => {
    const claims: AttemptClaim[] = [];
    await world.bus.serveClaims(async (claim) => {
      claims.push(claim);
      return { verdict: 'run', execution: 0 };
    });
    await world.startHost([countingNoop()], { verifyClaims: true });
    const cancelled = makeTask({ executor: 'noop' });
    const other = makeTask({ executor: 'noop' });
    await world.bus.publishCancel({ taskId: cancelled.taskId, attempt: 1, reason: 'by alice' });
    await world.bus.publishCancel({ taskId: other.taskId, attempt: 2, reason: 'an earlier attempt' });
    await world.submit(cancelled);
    await world.submit(other);
    expect((await world.result(other.taskId)).outcome.state).toBe('SUCCEEDED');
    await waitFor(() => world.timeline.includes(`ack:${cancelled.taskId}`), 'the cancelled delivery acked');
    expect(submits).toEqual([`${other.taskId}:1`]);
    expect(claims.map((c) => c.taskId)).toEqual([other.taskId]);
    expect(world.eventsOf(cancelled.taskId)).toEqual([]);
  });
});

// A subscriber that falls behind gets the latest progress of each task, and every other event, in order, with no
// read of the store for the progress reports it skipped (issue 21).
import { describe, expect, it } from 'vitest';
import { createRunFeed, type FeedEvent, runEventStream } from './feed';

const progress = (seq: number, taskId: string, fraction: number): FeedEvent => ({
  kind: 'task-progress',
  runId: 'r',
  taskId,
  node: taskId,
  fraction,
  message: null,
  at: '',
  seq,
});
const status = (seq: number, taskId: string): FeedEvent => ({
  kind: 'task-status',
  runId: 'r',
  taskId,
  node: taskId,
  status: 'SUCCEEDED',
  attempt: 1,
  reason: null,
  message: null,
  at: '',
  seq,
});

describe('runEventStream for a subscriber that falls behind', () => {
  it('coalesces the progress waiting for it to the latest per task, keeping every status change in order', async () => {
    const feed = createRunFeed();
    let reads = 0;
    const since = feed.since;
    feed.since = async (runId, after) => {
      reads++;
      return since(runId, after);
    };
    const stream = runEventStream(feed, 'r', 0, false);
    const first = stream.next(); // the subscriber is at its first event; the rest wait while it is slow
    feed.publish([progress(1, 'a', 0.1)]);
    expect(((await first).value as FeedEvent).seq).toBe(1);
    feed.publish([progress(2, 'a', 0.2), progress(3, 'b', 0.5), progress(4, 'a', 0.3), status(5, 'b'), progress(6, 'a', 0.9), status(7, 'a')]);
    const got: string[] = [];
    for (let i = 0; i < 4; i++) {
      const e = (await stream.next()).value as FeedEvent;
      got.push(e.kind === 'task-progress' ? `${e.seq}:${e.taskId}@${e.fraction}` : `${e.seq}:${(e as { taskId: string }).taskId} ${e.kind}`);
    }
    // a's reports 2 and 4 were overtaken by 6 before they were sent; b's only report and both statuses go as they are.
    expect(got).toEqual(['3:b@0.5', '5:b task-status', '6:a@0.9', '7:a task-status']);
    expect(reads).toBe(0);
    await stream.return?.();
  });
});

// Task tokens minted before a claim batch is answered (stored by the claim query itself): a claim that names no task
// (malformed id or attempt) gets no token row, so it cannot fail the statement that answers the whole batch.
import { describe, expect, it } from 'vitest';
import type { Db } from '../../server/db/client';
import { taskTracking } from '../../server/tracking/task-tokens';

const untouchable = new Proxy(
  {},
  {
    get: () => {
      throw new Error('the database was used');
    },
  },
) as Db;

describe('claim tokens', () => {
  it('mints nothing, and reads nothing, for claims that name no task', async () => {
    const tracking = taskTracking(untouchable, () => 'http://control-plane');
    const claims = [
      { taskId: 'not-a-uuid', runId: 'r', attempt: 1, host: 'h' },
      { taskId: '00000000-0000-4000-8000-000000000000', runId: 'r', attempt: 1.5, host: 'h' },
    ];
    expect(await tracking.prepare(claims)).toBeUndefined();
  });

  it('mints nothing when the control plane has no address for MLflow clients yet', async () => {
    const tracking = taskTracking(untouchable, () => undefined);
    expect(await tracking.prepare([{ taskId: '00000000-0000-4000-8000-000000000000', runId: 'r', attempt: 1, host: 'h' }])).toBeUndefined();
  });
});

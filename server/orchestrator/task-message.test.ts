import { describe, expect, it } from 'vitest';
import type { Task } from '../db/tables/runs';
import { taskMessage } from './task-message';

const at = new Date('2025-06-01T12:00:00Z');
const task = (over: Partial<Task> = {}): Task =>
  ({
    id: 't1',
    runId: 'r1',
    node: 'fit',
    kind: 'module',
    moduleRef: 'ml/fit@latest',
    moduleVersionId: 'v1',
    parameters: { lr: 0.1 },
    dependsOn: ['prep', 'split'],
    attempt: 2,
    pool: 'gpu',
    executor: 'kubernetes-gpu',
    timeoutMs: 60_000,
    settings: { image: 'x' },
    hotCluster: null,
    dataAccess: null,
    ...over,
  }) as Task;
const version = { digest: 'sha256:abc', manifest: { namespace: 'ml', name: 'fit', entrypoint: 'fit.py', runtime: 'python3' } } as Parameters<
  typeof taskMessage
>[1];

describe('the bus message for a task’s next attempt', () => {
  it('carries the next attempt number, the pinned module, and each upstream’s outputs ({} when it has none)', () => {
    const message = taskMessage(task(), version, new Map([['prep', { rows: 10 }]]), at);
    expect(message).toEqual({
      taskId: 't1',
      runId: 'r1',
      attempt: 3,
      node: 'fit',
      pool: 'gpu',
      executor: 'kubernetes-gpu',
      module: { ref: 'ml/fit@latest', digest: 'sha256:abc', entrypoint: 'fit.py', runtime: 'python3' },
      parameters: { lr: 0.1 },
      inputs: { prep: { rows: 10 }, split: {} },
      timeoutMs: 60_000,
      settings: { image: 'x' },
      enqueuedAt: '2025-06-01T12:00:00.000Z',
    });
  });

  it('names the hot cluster only when there is one', () => {
    expect(taskMessage(task({ hotCluster: 'warm-1' }), version, new Map(), at).hotCluster).toBe('warm-1');
    expect('hotCluster' in taskMessage(task(), version, new Map(), at)).toBe(false);
  });

  it('hands over the permitted datasets and columns without the labels that decided them', () => {
    const dataAccess = {
      inputs: {
        customers: {
          dataset: 'crm/customers',
          version: 4,
          digest: 'd',
          columns: ['id', 'region'],
          labels: { email: { level: 'CONFIDENTIAL', categories: ['PII'] } },
        },
      },
      outputs: { scores: { dataset: 'ml/scores' } },
    } as unknown as NonNullable<Task['dataAccess']>;
    const message = taskMessage(task({ dataAccess }), version, new Map(), at);
    expect(message.datasets).toEqual({
      inputs: { customers: { dataset: 'crm/customers', version: 4, digest: 'd', columns: ['id', 'region'] } },
      outputs: { scores: { dataset: 'ml/scores' } },
    });
    expect('datasets' in taskMessage(task(), version, new Map(), at)).toBe(false);
  });
});

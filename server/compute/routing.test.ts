import { describe, expect, it } from 'vitest';
import type { ExecutorHostRow } from '../db/tables/executors';
import { gpuPoolFor, waitingReason } from './routing';

const now = new Date('2025-06-01T12:00:00Z');
const STALE_MS = 15_000;
const host = (over: Partial<ExecutorHostRow>): ExecutorHostRow => ({
  id: over.name ?? 'h',
  name: 'h',
  executors: ['local'],
  pools: ['local'],
  capacity: 2,
  running: 0,
  gpus: 0,
  hotClusters: [],
  draining: false,
  hotClusterExecutors: [],
  remoteHotClusterExecutors: [],
  version: '0.1.0',
  startedAt: now,
  lastSeenAt: now,
  ...over,
});
const task = (over: Partial<Parameters<typeof waitingReason>[0]> = {}) => ({
  kind: 'module' as const,
  status: 'QUEUED' as const,
  pool: 'gpu-a100',
  executor: 'local',
  gpus: 0,
  hotCluster: null,
  ...over,
});

describe('gpuPoolFor', () => {
  const learnt = { gpuPools: {}, fallbackPool: 'gpu' };

  it('picks the smallest declared pool that fits, and refuses a request none can serve', () => {
    const declared = { gpuPools: { 'gpu-a100': 8, 'gpu-t4': 1 }, fallbackPool: 'gpu' };
    expect(gpuPoolFor(1, declared, [], now, STALE_MS)).toEqual({ pool: 'gpu-t4' });
    expect(gpuPoolFor(4, declared, [], now, STALE_MS)).toEqual({ pool: 'gpu-a100' });
    expect(gpuPoolFor(16, declared, [], now, STALE_MS)).toEqual({
      error: 'asks for 16 GPUs but no pool has that many per host (ATELIER_GPU_POOLS: gpu-a100=8, gpu-t4=1); ask for fewer, or declare and start a larger pool',
    });
  });

  it('without declarations, prefers a live host with enough GPUs, then a stale one, then the fallback pool', () => {
    const stale = host({ name: 'old', pools: ['gpu-old'], gpus: 4, lastSeenAt: new Date(now.getTime() - 60_000) });
    const live = host({ name: 'new', pools: ['gpu-new'], gpus: 8 });
    const small = host({ name: 'small', pools: ['gpu-small'], gpus: 1 });
    expect(gpuPoolFor(2, learnt, [stale, live, small], now, STALE_MS)).toEqual({ pool: 'gpu-new' });
    expect(gpuPoolFor(2, learnt, [stale, small], now, STALE_MS)).toEqual({ pool: 'gpu-old' });
    expect(gpuPoolFor(2, learnt, [small], now, STALE_MS)).toEqual({ pool: 'gpu' });
  });
});

describe('waitingReason', () => {
  it('says when no host, or only a stale one, serves the pool', () => {
    expect(waitingReason(task({ gpus: 8 }), [], now, STALE_MS)).toBe(
      'no executor host serves pool gpu-a100 (it needs 8 GPUs); start one with `npx atelier executor --pools gpu-a100 --gpus 8`',
    );
    const gone = host({ name: 'gpu-node-1', pools: ['gpu-a100'], gpus: 8, lastSeenAt: new Date(now.getTime() - 5 * 60_000) });
    expect(waitingReason(task(), [gone], now, STALE_MS)).toBe(
      'no live executor host serves pool gpu-a100; last host seen 5 min ago (gpu-node-1) — start one with `npx atelier executor --pools gpu-a100`',
    );
  });

  it('says when live hosts lack the executor, the GPUs or the hot cluster, or are all busy', () => {
    const live = host({ name: 'n1', pools: ['gpu-a100'], gpus: 2, capacity: 1, running: 1 });
    expect(waitingReason(task({ executor: 'databricks' }), [live], now, STALE_MS)).toContain('do not run executor "databricks" (they run local)');
    expect(waitingReason(task({ gpus: 4 }), [live], now, STALE_MS)).toBe(
      'needs 4 GPUs; the live hosts of pool gpu-a100 have at most 2 — start one with `npx atelier executor --pools gpu-a100 --gpus 4`',
    );
    expect(waitingReason(task({ hotCluster: 'warm' }), [live], now, STALE_MS)).toBe('hot cluster warm is not warm on any live host of pool gpu-a100 yet');
    expect(waitingReason(task(), [live], now, STALE_MS)).toBe('all 1 slot of pool gpu-a100 is busy');
    expect(waitingReason(task(), [{ ...live, running: 0 }], now, STALE_MS)).toBeNull();
    expect(waitingReason(task({ status: 'RUNNING' }), [], now, STALE_MS)).toBeNull();
  });

  it('counts a kubernetes-gpu hot cluster’s pods, which run its tasks with local, as hosts of the task’s executor', () => {
    const pod = host({ name: 'atelier-hot-warm-x1', pools: ['gpu-a100'], gpus: 1, capacity: 1, executors: ['local', 'noop'], hotClusters: ['warm'] });
    const k8sTask = task({ executor: 'kubernetes-gpu', gpus: 1, hotCluster: 'warm' });
    expect(waitingReason(k8sTask, [pod], now, STALE_MS)).toBeNull();
    expect(waitingReason({ ...k8sTask, hotCluster: null }, [pod], now, STALE_MS)).toContain('do not run executor "kubernetes-gpu"');
    expect(waitingReason(k8sTask, [{ ...pod, running: 1 }], now, STALE_MS)).toBe('all 1 slot of pool gpu-a100 is busy');
  });
});

import { describe, expect, it } from 'vitest';
import { admitsNewRun, limitedPools, runsToAdmit, takePoolSlots, takeRunSlots } from './limits';

const t = (id: string, pool: string) => ({ id, pool });
const ids = (tasks: { id: string }[]) => tasks.map((x) => x.id);

describe('a run’s maxParallelTasks', () => {
  it('takes the first tasks up to the slots left, in order', () => {
    expect(takeRunSlots(['a', 'b', 'c', 'd'], 3, 1)).toEqual(['a', 'b']);
  });
  it('takes none when the run is full or over its limit (a limit lowered while tasks run)', () => {
    expect(takeRunSlots(['a', 'b'], 2, 2)).toEqual([]);
    expect(takeRunSlots(['a', 'b'], 2, 5)).toEqual([]);
  });
  it('takes all when more slots are left than tasks are ready', () => {
    expect(takeRunSlots(['a', 'b'], 10, 0)).toEqual(['a', 'b']);
  });
});

describe('pool limits', () => {
  it('locks only the pools with a limit, each once, sorted so replicas take locks in the same order', () => {
    const ready = [t('1', 'gpu'), t('2', 'local'), t('3', 'cpu'), t('4', 'gpu')];
    expect(limitedPools(ready, { gpu: 1, cpu: 0 })).toEqual(['cpu', 'gpu']);
    expect(limitedPools(ready, undefined)).toEqual([]);
    expect(limitedPools(ready, { other: 3 })).toEqual([]);
  });

  it('a limit of 0 is a limit (nothing starts), not the absence of one', () => {
    expect(limitedPools([t('1', 'gpu')], { gpu: 0 })).toEqual(['gpu']);
    expect(takePoolSlots([t('1', 'gpu'), t('2', 'local')], new Map([['gpu', 0]]))).toEqual([t('2', 'local')]);
  });

  it('fills each pool’s slots in order, passes unlimited pools through, and takes none from a pool over its limit', () => {
    const ready = [t('1', 'gpu'), t('2', 'cpu'), t('3', 'gpu'), t('4', 'local'), t('5', 'gpu'), t('6', 'cpu')];
    const slots = new Map([
      ['gpu', 2],
      ['cpu', -1],
    ]);
    expect(ids(takePoolSlots(ready, slots))).toEqual(['1', '3', '4']);
    // the caller's counts are not consumed
    expect(slots.get('gpu')).toBe(2);
  });
});

describe('run admission (maxActiveRuns)', () => {
  it('admits a new run only while fewer than the limit are active', () => {
    expect(admitsNewRun(2, 1)).toBe(true);
    expect(admitsNewRun(2, 2)).toBe(false);
    expect(admitsNewRun(1, 3)).toBe(false);
  });
  it('admits as many waiting runs as slots are free, none when over, all once the limit is gone', () => {
    expect(runsToAdmit(3, 1)).toBe(2);
    expect(runsToAdmit(3, 3)).toBe(0);
    expect(runsToAdmit(1, 4)).toBe(0);
    expect(runsToAdmit(0, 0)).toBe(0);
    expect(runsToAdmit(undefined, 7)).toBe(Infinity);
  });
});

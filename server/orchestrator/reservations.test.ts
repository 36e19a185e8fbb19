// Which claims a reservation answers, and when it is gone: the rules of reservations.ts without a database (the
// statement's rows are given as the dispatch's statement returns them; test/wire/reserved-claims.test.ts runs it).
import { describe, expect, it } from 'vitest';
import type { AttemptClaim, TaskMessage } from '../../plugins/protocol';
import { ClaimReservations, RESERVATION_TTL_MS, RESERVE_MAX_TASKS } from './reservations';

const TASK = '00000000-0000-4000-8000-000000000001';
const KEY = '00000000-0000-4000-8000-0000000000aa';
const message = { taskId: TASK, executor: 'noop' } as TaskMessage;
const claim: AttemptClaim = { taskId: TASK, runId: 'run', attempt: 1, host: 'h', execution: null };

function reserved(options: { tracking?: boolean; count?: number; tokened?: boolean } = {}) {
  let now = 1_000;
  const reservations = new ClaimReservations({
    now: () => now,
    tracking: options.tracking === false ? undefined : () => ({ identityId: 'id', uri: 'http://cp' }),
  });
  const plan = reservations.plan('run', [TASK], [{ payload: message }])!;
  plan.drew([
    { task_id: TASK, attempt: 1, count: options.count ?? 1, key: KEY, tokened: false },
    ...(options.tokened === false || options.tracking === false ? [] : [{ task_id: TASK, attempt: null, count: null, key: null, tokened: true }]),
  ]);
  plan.committed();
  return { reservations, later: (ms: number) => void (now += ms) };
}

describe('claim reservations', () => {
  it('reserve only small dispatches', () => {
    const reservations = new ClaimReservations();
    expect(reservations.plan('run', [], [])).toBeUndefined();
    expect(
      reservations.plan(
        'run',
        Array.from({ length: RESERVE_MAX_TASKS + 1 }, () => TASK),
        [],
      ),
    ).toBeUndefined();
    expect(reservations.plan('run', [TASK], [])).toBeDefined();
  });

  it('keep nothing before the commit, nor an attempt numbered before', () => {
    const reservations = new ClaimReservations();
    reservations.plan('run', [TASK], [])!.drew([{ task_id: TASK, attempt: 1, count: 1, key: KEY, tokened: false }]);
    expect(reservations.answer(claim, undefined)).toBeUndefined();
    expect(reserved({ count: 2 }).reservations.answer(claim, undefined)).toBeUndefined();
  });

  it("answer an attempt's first ask once, with execution 0, the key and the token", () => {
    const { reservations } = reserved();
    expect(reservations.answer(claim, 'http://cp')).toMatchObject({
      verdict: 'run',
      execution: 0,
      attemptKey: KEY,
      tracking: { uri: 'http://cp', runId: TASK, token: expect.any(String) },
    });
    expect(reservations.answer(claim, 'http://cp')).toBeUndefined();
  });

  it('leave asked-again, redelivered, other-attempt and stale claims to the query', () => {
    for (const other of [
      { ...claim, execution: 0 },
      { ...claim, attemptKey: KEY },
      { ...claim, redelivered: true as const },
      { ...claim, attempt: 2 },
    ])
      expect(reserved().reservations.answer(other, 'http://cp')).toBeUndefined();
    const { reservations, later } = reserved();
    later(RESERVATION_TTL_MS + 1);
    expect(reservations.answer(claim, 'http://cp')).toBeUndefined();
  });

  it('answer without a token only a claim that wants none', () => {
    expect(reserved({ tokened: false }).reservations.answer(claim, 'http://cp')).toBeUndefined();
    expect(reserved({ tracking: false }).reservations.answer(claim, undefined)).toEqual({ verdict: 'run', execution: 0, attemptKey: KEY });
    expect(reserved({ tokened: false }).reservations.answer({ ...claim, tracking: false }, 'http://cp')).toEqual({
      verdict: 'run',
      execution: 0,
      attemptKey: KEY,
    });
  });

  it('mint no token for an executor whose claims asked for none, until one asks again', () => {
    const reservations = new ClaimReservations({ tracking: () => ({ identityId: 'id', uri: 'http://cp' }) });
    const dispatch = () => {
      const plan = reservations.plan('run', [TASK], [{ payload: message }])!;
      plan.drew([{ task_id: TASK, attempt: 1, count: 1, key: KEY, tokened: false }]);
      plan.committed();
      return plan.ctes.length;
    };
    expect(dispatch()).toBe(2); // numbering and tokens
    reservations.answer({ ...claim, tracking: false }, 'http://cp');
    expect(dispatch()).toBe(1); // numbering only
    expect(reservations.answer(claim, 'http://cp')).toBeUndefined(); // wants one now: the query mints it
    expect(dispatch()).toBe(2);
  });

  it("forget a task whose status changed, and a run's that ended", () => {
    const at = new Date().toISOString();
    const task = { kind: 'task-status', runId: 'run', taskId: TASK, node: 'n', attempt: 1, reason: null, message: null, at } as const;
    const queued = reserved();
    queued.reservations.void([{ ...task, status: 'QUEUED' }]);
    expect(queued.reservations.answer(claim, 'http://cp')).toBeDefined();
    const cancelled = reserved();
    cancelled.reservations.void([{ ...task, status: 'CANCELLED' }]);
    expect(cancelled.reservations.answer(claim, 'http://cp')).toBeUndefined();
    const ended = reserved();
    ended.reservations.void([{ kind: 'run-status', runId: 'run', status: 'FAILED', message: null, at }]);
    expect(ended.reservations.answer(claim, 'http://cp')).toBeUndefined();
  });
});

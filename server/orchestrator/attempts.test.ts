import { describe, expect, it } from 'vitest';
import { claimAction } from '../../plugins/host/attempt';
import { SEQ_BLOCK } from '../../plugins/protocol';
import type { TaskStatus } from '../vocabulary';
import { claimVerdict, confirmStuck, gateRedelivery, numberExecutions, reportVerdict, resultVerdict, secondResults } from './attempts';

const task = (status: TaskStatus, attempt = 1) => ({ status, attempt });

describe('claimVerdict: may a host run the attempt it took off the bus?', () => {
  it.each([
    ['QUEUED', 1, 1, { verdict: 'run' }],
    ['RUNNING', 1, 1, { verdict: 'run' }],
    ['SUCCEEDED', 1, 1, { verdict: 'drop', reason: 'finished', status: 'SUCCEEDED' }],
    ['FAILED', 1, 1, { verdict: 'drop', reason: 'finished', status: 'FAILED' }],
    ['CANCELLED', 1, 1, { verdict: 'drop', reason: 'finished', status: 'CANCELLED' }],
    ['RETRYING', 1, 1, { verdict: 'drop', reason: 'finished', status: 'RETRYING' }],
    ['QUEUED', 2, 1, { verdict: 'drop', reason: 'superseded', status: 'QUEUED' }],
    ['RUNNING', 3, 2, { verdict: 'drop', reason: 'superseded', status: 'RUNNING' }],
    ['QUEUED', 1, 2, { verdict: 'drop', reason: 'unknown', status: 'QUEUED' }],
  ] as const)('%s at attempt %i, claimed attempt %i', (status, current, claimed, answer) => {
    expect(claimVerdict(task(status, current), { attempt: claimed })).toEqual(answer);
  });

  it('drops an attempt of a task it does not know', () => {
    expect(claimVerdict(undefined, { attempt: 1 })).toEqual({ verdict: 'drop', reason: 'unknown' });
  });
});

describe('numberExecutions: which number each execution let run gets', () => {
  const run = { verdict: 'run' } as const;
  it('numbers the claims that ask, in order, from the count the database reached; keeps a number asked again', () => {
    const claims = [
      { taskId: 'a', execution: null },
      { taskId: 'b', execution: 4 },
      { taskId: 'a', execution: null },
      { taskId: 'c' }, // a host below protocol 4
    ];
    const numbered = new Map([['a', { asked: 2, count: 7 }]]);
    expect(numberExecutions(claims, [run, run, run, run], numbered)).toEqual([
      { verdict: 'run', execution: 5 },
      { verdict: 'run', execution: 4 },
      { verdict: 'run', execution: 6 },
      { verdict: 'run' },
    ]);
  });

  it("gives each numbered execution its attempt's key (protocol 6); a number asked again, or none, comes without one", () => {
    const key = '3f0c9a52-8d1e-4c1b-9a57-0b7c5d2e9f10';
    const claims = [{ taskId: 'a', execution: null }, { taskId: 'a', execution: 2 }, { taskId: 'c' }];
    const numbered = new Map([['a', { asked: 1, count: 3, key }]]);
    expect(numberExecutions(claims, [run, run, run], numbered)).toEqual([
      { verdict: 'run', execution: 2, attemptKey: key },
      { verdict: 'run', execution: 2 },
      { verdict: 'run' },
    ]);
  });

  it('asks again later a claim whose attempt stopped being current before it was numbered, and leaves drops alone', () => {
    const drop = { verdict: 'drop', reason: 'finished' } as const;
    const numbered = new Map([['a', { asked: 1, count: undefined }]]);
    expect(numberExecutions([{ taskId: 'a', execution: null }], [run], numbered)).toEqual([{ verdict: 'later', reason: 'recording' }]);
    expect(numberExecutions([{ taskId: 'a', execution: null }], [drop], numbered)).toEqual([drop]);
    // A number no control plane gave is not handed back: the host numbers from its delivery count instead.
    expect(
      numberExecutions(
        [
          { taskId: 'a', execution: -1 },
          { taskId: 'a', execution: 0.5 },
        ],
        [run, run],
        numbered,
      ),
    ).toEqual([run, run]);
  });
});

describe('secondResults: a result from another execution of an attempt that already has one', () => {
  const result = (attempt: number, seq: number) => ({ kind: 'result', taskId: 't', attempt, seq });
  it('keeps the first result per attempt, recorded or earlier in the batch, and marks other executions’ results', () => {
    const first = result(1, 3);
    const again = result(1, 3); // a redelivered copy of the same execution's result
    const other = result(1, SEQ_BLOCK + 2);
    expect([...secondResults([first, again, other], () => 1, new Map())]).toEqual([[other, 0]]);
    expect([...secondResults([other], () => 1, new Map([['t:1', 0]]))]).toEqual([[other, 0]]);
    expect([...secondResults([first], () => 2, new Map([['t:1', 0]]))]).toEqual([]);
  });

  it('leaves out an attempt the task never reached, and reports that are not results', () => {
    expect(secondResults([result(3, 0), result(3, SEQ_BLOCK)], () => 2, new Map()).size).toBe(0);
    expect(secondResults([{ ...result(1, SEQ_BLOCK), kind: 'log' }], () => 1, new Map([['t:1', 0]])).size).toBe(0);
  });
});

describe('reportVerdict: which reports are recorded', () => {
  it('records every report of the current attempt', () => {
    expect(reportVerdict(task('RUNNING'), { attempt: 1, seq: 5 * SEQ_BLOCK }, undefined)).toBe('record');
  });

  it("records the late words of the execution that ended the attempt, and refuses another execution's", () => {
    expect(reportVerdict(task('SUCCEEDED'), { attempt: 1, seq: 7 }, 0)).toBe('record');
    expect(reportVerdict(task('SUCCEEDED'), { attempt: 1, seq: SEQ_BLOCK + 1 }, 0)).toBe('refuse');
    expect(reportVerdict(task('SUCCEEDED'), { attempt: 1, seq: 3 }, 1)).toBe('refuse');
    expect(reportVerdict(task('QUEUED', 2), { attempt: 1, seq: SEQ_BLOCK }, 0)).toBe('refuse');
  });

  it('records what an attempt that ended without a result of its own says (cancelled, presumed lost)', () => {
    expect(reportVerdict(task('CANCELLED'), { attempt: 1, seq: 4 }, undefined)).toBe('record');
    expect(reportVerdict(task('RUNNING', 2), { attempt: 1, seq: 4 }, undefined)).toBe('record');
  });

  it('refuses reports of an attempt the task never reached', () => {
    expect(reportVerdict(task('RUNNING', 1), { attempt: 2, seq: 0 }, undefined)).toBe('refuse');
  });
});

describe('resultVerdict: what a newly stored result does', () => {
  const ok = { state: 'SUCCEEDED' } as const;
  const failed = { state: 'FAILED' } as const;
  it.each([
    ['RUNNING', 1, 1, ok, 'apply'],
    ['QUEUED', 1, 1, failed, 'apply'],
    ['SUCCEEDED', 1, 1, ok, 'history'],
    ['FAILED', 2, 1, ok, 'history'],
    // Given up on too early (presumed lost): its success ends the task instead of a second execution.
    ['RETRYING', 1, 1, ok, 'adopt'],
    ['QUEUED', 2, 1, ok, 'adopt'],
    ['RUNNING', 2, 1, ok, 'adopt'],
    ['READY', 1, 1, ok, 'adopt'],
    ['RETRYING', 1, 1, failed, 'history'],
    ['RUNNING', 2, 1, failed, 'history'],
    ['RUNNING', 1, 2, ok, 'history'],
  ] as const)('%s at attempt %i, result of attempt %i (%o): %s', (status, current, attempt, outcome, verdict) => {
    expect(resultVerdict(task(status, current), { attempt, outcome })).toBe(verdict);
  });
});

describe('confirmStuck: a silent task is declared lost only once the bus has nothing older left to record', () => {
  it('confirms at once when everything published was recorded', () => {
    expect(confirmStuck(undefined, { heartbeatAt: 10 }, { published: 50, recorded: 50 })).toEqual({
      confirmed: true,
      suspect: { mark: 50, heartbeatAt: 10 },
    });
  });

  it('waits while events published before it looked are unrecorded, however long that takes', () => {
    const first = confirmStuck(undefined, { heartbeatAt: 10 }, { published: 50, recorded: 40 });
    expect(first).toEqual({ confirmed: false, suspect: { mark: 50, heartbeatAt: 10 } });
    // Later events do not move the mark: only those published before the task looked stuck matter.
    const second = confirmStuck(first.suspect, { heartbeatAt: 10 }, { published: 90, recorded: 49 });
    expect(second.confirmed).toBe(false);
    expect(confirmStuck(second.suspect, { heartbeatAt: 10 }, { published: 120, recorded: 50 }).confirmed).toBe(true);
  });

  it('starts over when a heartbeat was recorded meanwhile', () => {
    const first = confirmStuck(undefined, { heartbeatAt: 10 }, { published: 50, recorded: 40 });
    expect(confirmStuck(first.suspect, { heartbeatAt: 20 }, { published: 90, recorded: 60 })).toEqual({
      confirmed: false,
      suspect: { mark: 90, heartbeatAt: 20 },
    });
  });

  it('confirms at once where the bus cannot say (no recorder)', () => {
    expect(confirmStuck(undefined, { heartbeatAt: null }, undefined).confirmed).toBe(true);
  });
});

describe('gateRedelivery: a redelivered attempt runs only once the bus has nothing older left to record', () => {
  it('runs at once when everything published was recorded (a host died mid-attempt: run it again)', () => {
    expect(gateRedelivery(undefined, { published: 50, recorded: 50 }, 1_000)).toEqual({ answer: { verdict: 'run' }, held: undefined });
  });

  it('holds it while events published before the first claim are unrecorded (its result may be among them)', () => {
    const first = gateRedelivery(undefined, { published: 50, recorded: 40 }, 1_000);
    expect(first).toEqual({ answer: { verdict: 'later', reason: 'recording' }, held: { suspect: { mark: 50, heartbeatAt: null }, since: 1_000 } });
    // Events published after the first claim do not move the mark, so a steady stream cannot hold it forever.
    const second = gateRedelivery(first.held, { published: 90, recorded: 49 }, 3_000);
    expect(second.answer.verdict).toBe('later');
    expect(second.held?.since).toBe(1_000);
    expect(gateRedelivery(second.held, { published: 120, recorded: 50 }, 5_000)).toEqual({ answer: { verdict: 'run' }, held: undefined });
  });

  it('runs when the bus keeps no backlog (no recorder to wait for)', () => {
    expect(gateRedelivery(undefined, undefined, 0).answer).toEqual({ verdict: 'run' });
  });

  it('a host told "later" asks again and runs nothing', () => {
    expect(claimAction({ verdict: 'later', reason: 'recording' })).toBe('ask-later');
    expect(claimAction(undefined)).toBe('ask-later');
    expect(claimAction({ verdict: 'drop', reason: 'finished' })).toBe('drop');
  });
});

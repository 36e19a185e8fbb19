// Pure decisions that keep every task's result exactly once: whether a host may run an attempt it took off the bus
// (claims), which reports of an attempt are recorded, what a result does to its task, and when a task whose host
// went silent (or that ran past its deadline) may be declared stuck without racing events still on the bus.
import { type AttemptClaim, type ClaimAnswer, SEQ_BLOCK, type TaskOutcome } from '../../plugins/protocol';
import type { TaskStatus } from '../vocabulary';
import { isTerminal } from './rules';

/** What an executor host's events carry that decides their fate. */
interface TaskState {
  status: TaskStatus;
  attempt: number;
}

/** Which delivery (execution) of an attempt a report came from. */
export const seqBlock = (seq: number) => Math.floor(seq / SEQ_BLOCK);

/** Whether attempt `attempt` of a task is still the one that may run and report. */
// Compared outright, not by ACTIVE.includes: asked several times an event, on every batch the recorder takes.
export const isCurrent = (task: TaskState, attempt: number) => task.attempt === attempt && (task.status === 'QUEUED' || task.status === 'RUNNING');

/** The answer to a host's claim of attempt `claim.attempt`, given the task's row (undefined: there is none). */
export function claimVerdict(task: TaskState | undefined, claim: Pick<AttemptClaim, 'attempt'>): ClaimAnswer {
  if (!task) return { verdict: 'drop', reason: 'unknown' };
  if (isCurrent(task, claim.attempt)) return { verdict: 'run' };
  if (task.attempt > claim.attempt) return { verdict: 'drop', reason: 'superseded', status: task.status };
  // Ended (or, for a later attempt than the task ever had, never dispatched): running it cannot be right.
  return { verdict: 'drop', reason: task.attempt === claim.attempt ? 'finished' : 'unknown', status: task.status };
}

/**
 * Whether a report (anything but a heartbeat) is recorded. Reports of a current attempt are; so are the late words
 * of the execution that ended an attempt (its last logs after its result) and of an attempt that ended without a
 * result of its own (cancelled, presumed lost). A report from another execution of an attempt that already has its
 * result (a redelivered message run again) is refused: recorded nowhere, shown to no one.
 * `resultBlock`: the sequence block of the attempt's recorded result, if it has one.
 */
export function reportVerdict(task: TaskState, report: { attempt: number; seq: number }, resultBlock: number | undefined): 'record' | 'refuse' {
  if (isCurrent(task, report.attempt)) return 'record';
  if (report.attempt > task.attempt) return 'refuse';
  if (resultBlock === undefined) return 'record';
  return seqBlock(report.seq) === resultBlock ? 'record' : 'refuse';
}

/**
 * Of a batch's reports, the results that came second, each with the execution (sequence block) whose result came
 * first: another execution's result for an attempt whose recorded result (`resultBlocks`, by `taskId:attempt`) or
 * an earlier result in the batch came from a different execution. The first result of an attempt decides; a repeat
 * of the same execution's result is none of these (it is recorded once, as any redelivered event). Results of an
 * attempt the task never reached (refused by reportVerdict) are left out.
 */
export function secondResults<E extends { kind: string; taskId: string; attempt: number; seq: number }>(
  reports: E[],
  attemptOf: (taskId: string) => number,
  resultBlocks: Map<string, number>,
): Map<E, number> {
  const firsts = new Map(resultBlocks);
  const seconds = new Map<E, number>();
  for (const e of reports) {
    if (e.kind !== 'result' || e.attempt > attemptOf(e.taskId)) continue;
    const key = `${e.taskId}:${e.attempt}`;
    const first = firsts.get(key);
    if (first === undefined) firsts.set(key, seqBlock(e.seq));
    else if (first !== seqBlock(e.seq)) seconds.set(e, first);
  }
  return seconds;
}

/**
 * What a newly recorded result does. `apply`: it ends the current attempt. `adopt`: a success of an attempt the
 * control plane had given up on (its host presumed lost, so the task is RETRYING or on a later attempt) ends the
 * task with that success, rather than running the task a second time. `history`: kept, and changes nothing.
 */
export function resultVerdict(task: TaskState, result: { attempt: number; outcome: Pick<TaskOutcome, 'state'> }): 'apply' | 'adopt' | 'history' {
  if (isTerminal(task.status)) return 'history';
  if (isCurrent(task, result.attempt)) return 'apply';
  if (result.outcome.state === 'SUCCEEDED' && result.attempt <= task.attempt) return 'adopt';
  return 'history';
}

/**
 * The run answers with their execution numbers (protocol 4). A claim that asked for one (`execution: null`) gets the
 * next of its task's, in claim order: `numbered` has, per task, how many of the batch's claims asked and the task's
 * count once they were numbered (undefined: none was, the attempt stopped being current meanwhile, so the claim is
 * asked again later). A claim that carries its number keeps it; one from a host below 4 gets none. Each number goes
 * with the attempt's key (protocol 6), the same for every execution of the attempt in this database. The answers are
 * set in `answers` (the caller's own, returned): a run answer given here is claimVerdict's (`{ verdict: 'run' }`,
 * nothing else on it), and a numbered one is made as a literal.
 */
export function numberExecutions(
  claims: Pick<AttemptClaim, 'taskId' | 'execution'>[],
  answers: ClaimAnswer[],
  numbered: Map<string, { asked: number; count: number | undefined; key?: string }>,
): ClaimAnswer[] {
  // Most batches' claims (a task batch's, one claim an attempt) ask once a task: the map is made only for a repeat.
  let given: Map<string, number> | undefined;
  for (let i = 0; i < answers.length; i++) {
    const answer = answers[i]!;
    const claim = claims[i]!;
    if (answer.verdict !== 'run' || claim.execution === undefined) continue;
    // A number the host already has is kept; one no control plane could have given (not a small whole number) is not.
    if (claim.execution !== null) {
      if (isExecutionNumber(claim.execution)) answers[i] = runAnswer(claim.execution, undefined);
      continue;
    }
    const task = numbered.get(claim.taskId);
    if (task?.count === undefined) {
      answers[i] = { verdict: 'later', reason: 'recording' };
      continue;
    }
    let k = 0;
    if (task.asked > 1) {
      given ??= new Map();
      k = given.get(claim.taskId) ?? 0;
      given.set(claim.taskId, k + 1);
    }
    answers[i] = runAnswer(task.count - task.asked + k, task.key || undefined);
  }
  return answers;
}

/**
 * A numbered run answer, one shape for all: a spread of claimVerdict's answer and a conditional one of the key were
 * ~1 µs a claim (V8's generic copy), and the claim server's copy of each answer then met several shapes.
 */
const runAnswer = (execution: number, attemptKey: string | undefined): ClaimAnswer =>
  attemptKey === undefined ? { verdict: 'run', execution } : { verdict: 'run', execution, attemptKey };

/** Execution numbers stay below 2^20, so `execution * SEQ_BLOCK` plus an execution's events stays a safe integer. */
const isExecutionNumber = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) < 2 ** 20;

/** A task the sweep found silent or past its deadline, as it was first seen. */
export interface Suspect {
  /** The event stream's last sequence number when the task was first seen stuck. */
  mark: number;
  /** Its heartbeat then (ms); a newer heartbeat clears the suspicion. */
  heartbeatAt: number | null;
}

/**
 * Whether a stuck task is confirmed: only once every event published before it was first seen stuck has been
 * recorded (`recorded` ≥ its mark) with no heartbeat since. A result or heartbeat still waiting on the bus (a
 * replica died holding it, its ack wait not yet over) is recorded first, so the verdict depends on no timeout being
 * longer than another. `backlog` undefined: the bus cannot say (no recorder), so the task is confirmed at once.
 */
export function confirmStuck(
  previous: Suspect | undefined,
  seen: { heartbeatAt: number | null },
  backlog: { published: number; recorded: number } | undefined,
): { confirmed: boolean; suspect: Suspect } {
  const suspect = previous && previous.heartbeatAt === seen.heartbeatAt ? previous : { mark: backlog?.published ?? 0, heartbeatAt: seen.heartbeatAt };
  return { confirmed: !backlog || backlog.recorded >= suspect.mark, suspect };
}

/** A redelivered attempt's claim held back until the events published before it are recorded. */
export interface HeldClaim {
  suspect: Suspect;
  /** When it was first held (ms), to forget holds whose host stopped asking. */
  since: number;
}

/**
 * The answer to a claim of a redelivered message whose attempt the database still calls current: the execution that
 * took the first delivery may have run and reported, its result still on the bus behind a recorder that was down or
 * slow. It runs only once every event published before it was first claimed is recorded (the same rule as
 * confirmStuck); until then the host is told to ask again, so an attempt whose result is on its way never runs twice.
 */
export function gateRedelivery(
  held: HeldClaim | undefined,
  backlog: { published: number; recorded: number } | undefined,
  now: number,
): { answer: ClaimAnswer; held: HeldClaim | undefined } {
  const { confirmed, suspect } = confirmStuck(held?.suspect, { heartbeatAt: null }, backlog);
  if (confirmed) return { answer: { verdict: 'run' }, held: undefined };
  return { answer: { verdict: 'later', reason: 'recording' }, held: { suspect, since: held?.since ?? now } };
}

// How a local attempt ended, from its process's exit (or, for a process an earlier host started, its absence).

import { processAlive } from '../../plugins/process-group';
import { cancelled, failed, retryableFailure, succeeded, systemFailure, type TaskOutcome } from '../../plugins/sdk';
import type { AttemptState } from './launch';

const ADOPT_POLL_MS = 1_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How an attempt whose process exited ended: a stop we caused, success, a kill we did not send, a signal or an exit code. */
export function outcomeOf(state: AttemptState, code: number | null, signal: NodeJS.Signals | null, graceMs: number): TaskOutcome {
  const tail = state.stderrTail.join('\n');
  if (state.signalled) {
    const how = state.killedAfterGrace ? `killed with SIGKILL after a ${graceMs} ms grace period` : 'stopped with SIGTERM';
    return cancelled(state.cancelReason ?? 'cancelled', `process group ${how}`, { exitCode: code });
  }
  if (code === 0) return succeeded({ exitCode: 0 });
  if (signal === 'SIGKILL' || code === 137) {
    return retryableFailure(
      'killed',
      `${signal === 'SIGKILL' ? 'killed by SIGKILL' : 'exited with code 137 (a child killed by SIGKILL)'}, not sent by Atelier: ` +
        `probably out of memory (the kernel's OOM killer)${tail ? `; last stderr lines:\n${tail}` : ''}`,
      { exitCode: code },
    );
  }
  if (signal) {
    return failed('signal', `terminated by ${signal}${tail ? `; last stderr lines:\n${tail}` : ''}`, { exitCode: null });
  }
  // the task's own retry policy decides: a flaky step may well pass the second time
  return failed('exit-code', tail ? `exited with code ${code}; last stderr lines:\n${tail}` : `exited with code ${code} (no stderr output)`, {
    exitCode: code,
  });
}

/** A process started by an earlier host process: its pipes are gone, so only its end can be observed. */
export async function adopt(handle: { pid: number; startTime: number | null }): Promise<TaskOutcome> {
  while (await processAlive(handle.pid, handle.startTime)) await sleep(ADOPT_POLL_MS);
  return systemFailure('lost', `process ${handle.pid} was started by an earlier executor host process; its exit status is unknown`);
}

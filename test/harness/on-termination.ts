// vitest stops a worker process with SIGTERM (SIGKILL only if that does not end it), and Node ends on SIGTERM without
// running 'exit' handlers: the servers a worker keeps for all its files (test/harness/shared-postgres.ts: one Postgres
// cluster per worker) outlived every `npm test`, three more clusters and their directories each run. Ending on the
// signal with process.exit runs the 'exit' handlers that stop them.
import { constants } from 'node:os';

let installed = false;

/** Makes SIGTERM, SIGINT and SIGHUP end this process through its 'exit' handlers (once per process). */
export function exitHandlersOnTermination(): void {
  if (installed) return;
  installed = true;
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => process.exit(128 + constants.signals[signal]));
}

// Health checks of READY revision servers (a hung server lives yet answers nothing, so the crash check cannot see it):
// each is probed every `everyMs`, in the background (a hung one takes its whole timeout), and after `failures` failed
// probes in a row `onHung` is told why. A server replaced meanwhile (restarted: a new pid) starts a fresh count.
import { healthy } from './processes';
import type { RevisionState } from './state';

export interface HealthOptions {
  everyMs: number;
  timeoutMs: number;
  failures: number;
}

export function healthWatch(options: HealthOptions) {
  const probes = new Map<string, { pid: number | undefined; at: number; failed: number; busy: boolean }>();
  return {
    /** Probes `rev` (keyed `key`) when its turn has come; `onHung` once it failed `failures` probes in a row. */
    check(key: string, rev: RevisionState, onHung: (why: string) => void) {
      const pid = rev.process?.pid;
      let seen = probes.get(key);
      // A new process: its startup was its first check.
      if (!seen || seen.pid !== pid) probes.set(key, (seen = { pid, at: Date.now(), failed: 0, busy: false }));
      if (seen.busy || Date.now() - seen.at < options.everyMs) return;
      const entry = seen;
      entry.busy = true;
      entry.at = Date.now();
      void healthy(rev.port, rev.healthPath, options.timeoutMs)
        .then((ok) => {
          if (rev.process?.pid !== pid || rev.health !== 'READY') return probes.delete(key); // restarted meanwhile
          entry.failed = ok ? 0 : entry.failed + 1;
          if (entry.failed < options.failures) return;
          probes.delete(key);
          const what = rev.healthPath ? `GET ${rev.healthPath}` : 'a TCP connect';
          onHung(`the server stopped answering ${what} (${options.failures} checks in a row, ${options.timeoutMs} ms each)`);
        })
        .finally(() => {
          entry.busy = false;
        });
    },
    /** Forgets every server of a deployment (deleted). */
    forget(deploymentId: string) {
      for (const key of probes.keys()) if (key.startsWith(`${deploymentId}#`)) probes.delete(key);
    },
  };
}

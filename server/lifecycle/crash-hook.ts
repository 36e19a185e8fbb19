// Test-only: a deterministic crash point for the chaos suite (test/chaos/exactly-once.test.ts) and the triggers'
// crash test (test/triggers/crash.test.ts: after a trigger's run started, before its firing is recorded), and the
// wire's (test/wire/direct-publish-crash.test.ts: task messages committed, not yet published), and a publish's
// (test/chaos/crash-mid-write.test.ts: the archive stored, its version not yet recorded). When
// ATELIER_TEST_CRASH_AFTER names a point, the process SIGKILLs itself there, as a power cut would. Unset in
// every real deployment, where this is a no-op.

/** Points at which a test may crash the control plane. */
export type CrashPoint = 'result-stored' | 'trigger-run-started' | 'tasks-committed' | 'module-object-stored';

export function crashPoint(point: CrashPoint): void {
  if (process.env.ATELIER_TEST_CRASH_AFTER === point) process.kill(process.pid, 'SIGKILL');
}

// The chaos suite's short form inside `npm test`: two control planes and two executor hosts on real Postgres and
// nats-server, every kind of fault injected on a seeded schedule while fan-out/fan-in runs, a cron schedule and
// graphql-ws and SSE subscribers go on; every counter of what must never happen must be 0. The long form is
// `npm run chaos` (test/chaos/run.ts).
import { expect, it } from 'vitest';
import { evidenceText, runChaos } from './harness';

it('loses no run, records nothing twice, runs nothing late, orphans no process and misleads no subscriber under seeded chaos', async () => {
  const report = await runChaos({
    seed: Number(process.env.CHAOS_SEED ?? 15),
    durationMs: 30_000,
    faults: 7, // every kind once, and one more
    runEveryMs: 1_500,
    fanOut: [3, 6],
    taskMs: [200, 2_500], // some modules are mid-run when their host is killed
    executorConcurrency: 6,
    settleMs: 60_000,
    // A task whose ack a fault lost is redelivered after 10 s instead of the default 30 s, and the suite settles once
    // no task message is left on the queue (drained.ts): such a redelivery is checked to find its task finished,
    // ~20 s sooner; with no ack lost, the suite settles as soon as the runs have ended.
    taskAckWaitSeconds: 10,
    quietMs: 2_000,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`\n${report.table}\n${evidenceText(report)}\n`);
  expect(report.faults.filter((f) => f.error)).toEqual([]);
  // The module processes are watched from outside (/proc): a watcher that saw none could count no orphan and no
  // execution whose reports were refused, so it must have seen some.
  expect(report.measured.executionSources.proc ?? 0, report.table).toBeGreaterThan(0);
  // A restart of Postgres or nats-server is ridden out, never a reason to exit.
  expect(report.exitedOnTheirOwn, evidenceText(report)).toEqual([]);
  expect(report.counters, evidenceText(report)).toEqual({
    runsLost: 0,
    runsStuck: 0,
    tasksSucceededTwice: 0,
    attemptsExecutedAfterFinish: 0,
    orphanedModuleProcesses: 0,
    subscriberStatesDiffering: 0,
    scheduleTicksNotFiredOnce: 0,
  });
}, 600_000);

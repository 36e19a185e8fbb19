// Trigger latency on real Postgres: a signal committed (recordSignal in its own transaction, as a source's change
// would) → its trigger's run started (the firing recorded STARTED with the run), p50 and p99 over 100 signals, the
// dispatcher kicked after each commit as the app does. The floor, from the same run: a plain startRun of the same
// workflow (its own transaction, the same plan and checks). Runs wait in a pool no host serves: nothing executes.
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { triggerFirings, workflowTriggers } from '../server/db/tables/triggers';
import { hookSubject, recordSignal } from '../server/signals/signals';
import { startTestApp } from '../test/harness/app';
import type { Infra } from './foundation';
import { percentile, type Row } from './lib';

const SAMPLES = 100;

export async function triggersBench(infra: Infra): Promise<Row[]> {
  const t = await startTestApp({ DATABASE_URL: infra.pgUrl, NATS_URL: infra.natsUrl });
  try {
    const { db, orchestrator, triggers } = t.app.services;
    await t.publishFixture('echo');
    const name = `bench-triggered-${Date.now()}`;
    await t.createWorkflow({ name, tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] });
    const { createTrigger } = await t.api.gql(
      `mutation ($w: String!, $n: String!) { createTrigger(input: { workflow: $w, name: $n, kind: HTTP, maxRunsPerMinute: 600, overlap: ALLOW }) { trigger { id } } }`,
      { w: name, n: name },
    );
    const triggerId = createTrigger.trigger.id as string;

    const fired = async (): Promise<number> => {
      const key = `bench:${randomUUID()}`;
      const start = performance.now();
      const signalId = await db.transaction((tx) => recordSignal(tx, { type: 'hook.received', team: null, subject: hookSubject(triggerId), key, payload: {} }));
      triggers.kick();
      for (;;) {
        const [f] = await db
          .select({ outcome: triggerFirings.outcome, runId: triggerFirings.runId })
          .from(triggerFirings)
          .where(and(eq(triggerFirings.triggerId, triggerId), eq(triggerFirings.signalId, signalId)));
        if (f && f.outcome !== 'PENDING') {
          if (f.outcome !== 'STARTED') throw new Error(`the firing ended ${f.outcome}`);
          return performance.now() - start;
        }
        // A short pause between looks, so the bench's own polling does not crowd the dispatcher off the pool.
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    const started = async (): Promise<number> => {
      const start = performance.now();
      await orchestrator.startRun({ workflow: name, trigger: 'API' }, null);
      return performance.now() - start;
    };
    for (let i = 0; i < 3; i++) {
      await fired();
      await started();
    }
    const trig: number[] = [];
    const floor: number[] = [];
    // Interleaved, so both see the same machine load.
    for (let i = 0; i < SAMPLES; i++) {
      trig.push(await fired());
      floor.push(await started());
    }
    await db.update(workflowTriggers).set({ paused: true }).where(eq(workflowTriggers.id, triggerId));
    const [p50, p99, f50, f99] = [percentile(trig, 50), percentile(trig, 99), percentile(floor, 50), percentile(floor, 99)];
    return [
      {
        bench: 'triggers',
        metric: `signal committed → triggered run started: p50 (${SAMPLES} signals)`,
        value: p50,
        unit: 'ms',
        floor: f50,
        ratio: p50 / f50,
        note: 'aim ≤ 50 ms; floor: a plain startRun of the same workflow, p50',
      },
      {
        bench: 'triggers',
        metric: 'signal committed → triggered run started: p99',
        value: p99,
        unit: 'ms',
        floor: f99,
        ratio: p99 / f99,
        note: 'floor: startRun p99',
      },
    ];
  } finally {
    await t.stop();
  }
}

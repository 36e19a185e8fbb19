// The recording's guessed path (record-guesses.ts) where its guess is wrong: each part of the guard made to fail by a
// change this control plane did not see (another replica's, a restore's, a redelivery), and the outcome shown to be the
// ordinary path's. Each case runs twice, on two runs of the same workflow changed alike: once on a recorder that
// started the run and guesses (its guard raises, nothing of the try is kept, and it records again by reading), once on
// a recorder that never guesses; the two outcomes (tasks, events stored, feed, webhooks, outbox) must be the same. Real
// Postgres, each recorder on a connection of its own whose statements are seen (counting-pool.ts).
import { randomUUID } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { queryRows } from '../../server/db/client';
import { runs, tasks } from '../../server/db/tables/runs';
import { countedApp, oneTask } from '../harness/counted-app';
import { type CountedOrchestrator, countedOrchestrator } from '../harness/counted-orchestrator';

const w = countedApp({ workflows: [oneTask()], env: { ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*' } });
/** A recorder beside the guessing one (`w.counted`) that always reads first: the ordinary path. */
let plain: CountedOrchestrator;

beforeAll(async () => {
  plain = countedOrchestrator(w.pg.url, { recordGuesses: false });
  // Every end of the team's runs writes a delivery: a run's end is compared with its webhooks.
  await w.alice.gql(`mutation ($u: String!) { createWebhook(team: "ml", url: $u, events: ["run.*"]) { secret } }`, { u: 'http://127.0.0.1:9/runs' });
});
afterAll(() => plain?.end());

type Base = { taskId: string; runId: string; attempt: number; host: string; at: string; attemptKey?: string };
const AT = '2026-01-01T00:00:00.000Z';

/** A one-task run started by `by` (so the guessing recorder holds its own), and what its task's reports carry. */
async function started(by: CountedOrchestrator): Promise<{ runId: string; taskId: string; base: Base }> {
  const run = await by.orchestrator.startRun({ workflow: 'one-task', trigger: 'API' }, null);
  const [task] = await w.db.select().from(tasks).where(eq(tasks.runId, run.id));
  return { runId: run.id, taskId: task!.id, base: { taskId: task!.id, runId: run.id, attempt: task!.attempt, host: 'test', at: AT } };
}

const bundle = (base: Base): ExecutorEvent[] => [
  { ...base, kind: 'started', seq: 1, handle: null },
  { ...base, kind: 'progress', seq: 2, fraction: 0.5, message: 'half way' },
  { ...base, kind: 'result', seq: 3, durationMs: 1, outcome: { state: 'SUCCEEDED', outputs: { out: 1 } } },
];
const firstProgress = (base: Base): ExecutorEvent[] => bundle(base).slice(0, 2);

/** What a run came to, by node: nothing in it names a run's or a task's id. */
async function outcome(runId: string) {
  const [run] = await w.db.select().from(runs).where(eq(runs.id, runId));
  const rows = await w.db.select().from(tasks).where(eq(tasks.runId, runId)).orderBy(tasks.node);
  const events = await queryRows<{ kind: string; attempt: number; seq: string }>(
    w.db,
    sql`select kind, attempt, seq::text from task_events where run_id = ${runId} order by task_id, attempt, seq`,
  );
  const feed = await w.t.app.services.feed.since(runId, 0);
  const deliveries = await queryRows<{ event_type: string }>(w.db, sql`select event_type from webhook_deliveries where subject = ${`run:${runId}`}`);
  return {
    run: { status: run!.status, name: run!.name, message: run!.message, started: run!.startedAt !== null, finished: run!.finishedAt !== null },
    tasks: rows.map((t) => ({
      node: t.node,
      status: t.status,
      attempt: t.attempt,
      progress: t.progress,
      progressMessage: t.progressMessage,
      outputs: t.outputs,
      reason: t.reason,
    })),
    events: events.map((e) => `${e.kind}:${e.attempt}:${e.seq}`),
    feed: feed.map((e) => `${e.kind}:${'status' in e ? e.status : 'fraction' in e ? e.fraction : ''}`),
    seqs: feed.map((e) => e.seq),
    deliveries: deliveries.map((d) => d.event_type).sort(),
  };
}

/**
 * Runs `scenario` on a run the guessing recorder started and on one the plain recorder started: `change` is what the
 * guessing recorder did not see, `record` what the host reports. Returns the two outcomes, and whether the guessing
 * recorder's guard was sent and raised (its last recording took a second transaction).
 */
async function both(scenario: {
  change?: (run: { runId: string; taskId: string }) => Promise<void>;
  record: (by: CountedOrchestrator, base: Base) => Promise<void>;
}) {
  const results = [];
  for (const by of [w.counted, plain]) {
    const { runId, taskId, base } = await started(by);
    await scenario.change?.({ runId, taskId });
    await scenario.record(by, base);
    results.push({ ...(await outcome(runId)), outbox: outboxWrites(by) });
  }
  return { guessed: results[0]!, ordinary: results[1]! };
}

/**
 * What the last transaction `by` began wrote to the outbox (its stops: a cancel sent, a queued message withdrawn), as
 * the statements it sent say: the app's relay publishes and deletes outbox rows meanwhile, so the rows tell nothing.
 */
const outboxWrites = (by: CountedOrchestrator) => {
  const begun = by.seen.sent.findLastIndex((s) => s.statement.startsWith('begin'));
  return by.seen.sent
    .slice(begun)
    .filter((s) => /\b(insert into|delete from) outbox\b/.test(s.statement))
    .map((s) => s.statement);
};

/** Records `events` on `by`, and returns whether a guard was sent and missed (the recording began twice). */
async function record(by: CountedOrchestrator, events: ExecutorEvent[]): Promise<{ guarded: boolean; missed: boolean }> {
  by.seen.sent.length = 0;
  await by.orchestrator.recordEvents(events);
  const guarded = by.seen.sent.some((s) => s.statement.includes('atelier_expect'));
  return { guarded, missed: guarded && by.seen.sent.filter((s) => s.statement.startsWith('begin')).length === 2 };
}

it('guesses right for a run it started: the same outcome as the ordinary path, in one transaction', async () => {
  const tries: { guarded: boolean; missed: boolean }[] = [];
  const { guessed, ordinary } = await both({ record: async (by, base) => void tries.push(await record(by, bundle(base))) });
  expect(tries).toEqual([
    { guarded: true, missed: false },
    { guarded: false, missed: false },
  ]);
  expect(guessed).toEqual(ordinary);
  expect(guessed.run.status).toBe('SUCCEEDED');
}, 60_000);

const cases: {
  name: string;
  change?: (run: { runId: string; taskId: string }) => Promise<void>;
  record: (by: CountedOrchestrator, base: Base) => Promise<boolean>;
}[] = [
  {
    name: "the run was cancelled (its row's status): a late result is history, its execution told to stop",
    change: async ({ runId }) => {
      await w.db
        .update(runs)
        .set({ status: 'CANCELLED', finishedAt: new Date(AT) })
        .where(eq(runs.id, runId));
      await w.db
        .update(tasks)
        .set({ status: 'CANCELLED', finishedAt: new Date(AT) })
        .where(eq(tasks.runId, runId));
    },
    record: async (by, base) => (await record(by, bundle(base))).missed,
  },
  {
    name: "the run's row moved on alone (its status and start, as another replica's recording left them)",
    change: async ({ runId }) =>
      void (await w.db
        .update(runs)
        .set({ status: 'RUNNING', startedAt: new Date(AT) })
        .where(eq(runs.id, runId))),
    record: async (by, base) => (await record(by, bundle(base))).missed,
  },
  {
    name: "the run was renamed (a column its end's webhook carries)",
    change: async ({ runId }) => void (await w.db.update(runs).set({ name: 'renamed' }).where(eq(runs.id, runId))),
    record: async (by, base) => (await record(by, bundle(base))).missed,
  },
  {
    name: 'the task was started by another replica (its status)',
    change: async ({ taskId }) =>
      void (await w.db
        .update(tasks)
        .set({ status: 'RUNNING', startedAt: new Date(AT), heartbeatAt: new Date(AT) })
        .where(eq(tasks.id, taskId))),
    record: async (by, base) => (await record(by, bundle(base))).missed,
  },
  {
    name: 'the task moved on to its next attempt (its attempt): the old attempt is history, told to stop',
    change: async ({ taskId }) =>
      void (await w.db
        .update(tasks)
        .set({ attempt: sql`${tasks.attempt} + 1` })
        .where(eq(tasks.id, taskId))),
    record: async (by, base) => (await record(by, bundle(base))).missed,
  },
  {
    name: "the reports carry a key this database did not draw for the attempt (the attempt's key): stale, told to stop",
    record: async (by, base) => (await record(by, bundle({ ...base, attemptKey: randomUUID() }))).missed,
  },
  {
    name: 'the first progress is delivered again (its events stored already): nothing new',
    record: async (by, base) => {
      await record(by, firstProgress(base));
      return (await record(by, firstProgress(base))).missed;
    },
  },
  {
    name: 'the run has another task after all (the run is not over with this one): the other made ready and queued',
    change: async ({ runId, taskId }) =>
      void (await w.db.execute(sql`insert into tasks (id, run_id, node, kind, module_ref, module_version_id, parameters, depends_on, status, timeout_ms, pool, executor)
        select ${randomUUID()}::uuid, run_id, 'later', kind, module_ref, module_version_id, parameters, array['work'], 'PENDING', timeout_ms, pool, executor
        from tasks where id = ${taskId}::uuid and run_id = ${runId}::uuid`)),
    record: async (by, base) => (await record(by, bundle(base))).missed,
  },
];

for (const c of cases)
  it(`falls back to the ordinary path when its guess misses: ${c.name}`, async () => {
    const missed: boolean[] = [];
    const { guessed, ordinary } = await both({ change: c.change, record: async (by, base) => void missed.push(await c.record(by, base)) });
    // The guessing recorder's guard raised and it recorded again by reading; the plain one never guessed.
    expect(missed).toEqual([true, false]);
    expect(guessed).toEqual(ordinary);
  }, 60_000);

it('reads first for a run it did not start, and after a miss, for the rest of that run', async () => {
  // Started by the app's control plane: the guessing recorder holds nothing of it.
  const runId = (await w.alice.gql(`mutation { startRun(workflow: "one-task") { id } }`)).startRun.id as string;
  const [task] = await w.db
    .select()
    .from(tasks)
    .where(and(eq(tasks.runId, runId), eq(tasks.status, 'QUEUED')));
  const base = { taskId: task!.id, runId, attempt: task!.attempt, host: 'test', at: AT };
  expect(await record(w.counted, firstProgress(base))).toEqual({ guarded: false, missed: false });
  // One it started, whose guess missed once (the first progress again): the next progress reads first.
  const mine = await started(w.counted);
  await record(w.counted, firstProgress(mine.base));
  expect(await record(w.counted, firstProgress(mine.base))).toEqual({ guarded: true, missed: true });
  expect(await record(w.counted, [{ ...mine.base, kind: 'progress', seq: 3, fraction: 0.75, message: null }])).toEqual({ guarded: false, missed: false });
  expect((await w.db.select().from(tasks).where(eq(tasks.id, mine.taskId)))[0]).toMatchObject({ status: 'RUNNING', progress: 0.75 });
}, 60_000);

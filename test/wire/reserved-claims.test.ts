// Claims answered from the dispatch's reservation (server/orchestrator/reservations.ts): a small dispatch numbers
// execution 0 of each attempt it queues and stores its MLflow token in its own statement, and the attempt's first claim
// at the control plane that dispatched it is answered from memory, with no statement. A second first ask of the attempt
// (a duplicate delivery), a claim of a task this process cancelled since, and a claim at another replica go to the
// claim query: execution 1, held until the event backlog is recorded. Real Postgres; an orchestrator on a connection of
// its own whose statements are counted (the dispatching control plane), and the test app as the other replica.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../plugins/bus/types';
import type { AttemptClaim, ClaimAnswer } from '../../plugins/protocol';
import type { Db } from '../../server/db/client';
import { tasks } from '../../server/db/tables/runs';
import { taskExecutions } from '../../server/db/tables/task-executions';
import { createClaimServer } from '../../server/events/claims';
import { ClaimReservations } from '../../server/orchestrator/reservations';
import { taskTracking } from '../../server/tracking/task-tokens';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';
import { type CountedOrchestrator, countedOrchestrator } from '../harness/counted-orchestrator';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let t: TestApp;
let db: Db;
let counted: CountedOrchestrator;
let ask: (claim: AttemptClaim) => Promise<ClaimAnswer>;
const backlog = { published: 0, recorded: 0 };

beforeAll(async () => {
  pg = await startPostgres();
  // No executor host: the runs' tasks stay queued for the test's own claims.
  t = await startTestApp({ DATABASE_URL: pg.url, ATELIER_EMBEDDED_EXECUTOR: '0', ATELIER_TICK_MS: '60000' });
  db = t.app.services.db;
  await t.publishFixture('sleep');
  await t.createWorkflow({ name: 'reserved', tasks: [{ name: 'only', module: 'test/sleep', executor: 'noop', pool: 'nobody', parameters: { ms: 0 } }] });
  const tracking = taskTracking(db, () => t.url);
  await tracking.ready();
  const reservations = new ClaimReservations({ tracking: tracking.known });
  counted = countedOrchestrator(pg.url, { reservations, eventBacklog: async () => ({ ...backlog }) });
  // The dispatching control plane's claim server, served on a bus of the test's own (the app's serves the app's bus).
  let serve: ((claim: AttemptClaim) => Promise<ClaimAnswer>) | undefined;
  const bus = { serveClaims: async (handler: typeof serve) => ((serve = handler), { stop: async () => {} }) } as unknown as Bus;
  await createClaimServer({ bus, orchestrator: counted.orchestrator, log: () => {}, tracking, reservations }).start();
  ask = (claim) => serve!(claim);
}, 120_000);

afterAll(async () => {
  await counted?.end();
  await t?.stop();
  await pg?.stop();
});

/** A run started by the counted orchestrator: its task, the key its dispatch drew, and a first claim of it. */
async function started() {
  const run = await counted.orchestrator.startRun({ workflow: 'reserved', trigger: 'API' }, null);
  const [task] = await db.select().from(tasks).where(eq(tasks.runId, run.id));
  const [drawn] = await db
    .select()
    .from(taskExecutions)
    .where(and(eq(taskExecutions.taskId, task!.id), eq(taskExecutions.attempt, task!.attempt)));
  const claim: AttemptClaim = { taskId: task!.id, runId: run.id, attempt: task!.attempt, host: 'h', execution: null };
  return { run, task: task!, drawn, claim };
}

/** The claim's answer and the statements the dispatching control plane sent for it. */
async function counting(claim: AttemptClaim) {
  counted.seen.sent.length = 0;
  const answer = await ask(claim);
  return { answer, statements: counted.seen.sent.length };
}

it('answers the first claim of a freshly dispatched attempt with no statement, execution 0, the drawn key and a working token', async () => {
  const { task, drawn, claim } = await started();
  expect(drawn).toMatchObject({ count: 1 });
  const { answer, statements } = await counting(claim);
  expect(statements).toBe(0);
  expect(answer).toMatchObject({ verdict: 'run', execution: 0, attemptKey: drawn!.key, tracking: { uri: t.url, runId: task.id } });
  const token = answer.verdict === 'run' ? answer.tracking!.token : '';
  const read = await fetch(`${t.url}/api/2.0/mlflow/runs/get?run_id=${task.id}`, { headers: { authorization: `Bearer ${token}` } });
  expect(read.status).toBe(200);
});

it('sends a second first ask of the attempt to the database: execution 1, held until the backlog is recorded', async () => {
  const { drawn, claim } = await started();
  expect((await counting(claim)).answer).toMatchObject({ verdict: 'run', execution: 0 });
  Object.assign(backlog, { published: 5, recorded: 3 });
  const again = await counting(claim);
  expect(again.statements).toBeGreaterThan(0);
  expect(again.answer).toEqual({ verdict: 'later', reason: 'recording' });
  backlog.recorded = 5;
  expect((await counting(claim)).answer).toMatchObject({ verdict: 'run', execution: 2, attemptKey: drawn!.key });
});

it('does not hand out a reservation of a task cancelled since, nor that of a run cancelled since', async () => {
  const { run, claim } = await started();
  await counted.orchestrator.cancelRun(run.id, null);
  const { answer, statements } = await counting(claim);
  expect(statements).toBeGreaterThan(0);
  expect(answer).toMatchObject({ verdict: 'drop', reason: 'finished' });
});

it('answers a claim at the replica that did not dispatch from the database: execution 1, the drawn key', async () => {
  const { drawn, claim } = await started();
  const answer = await until('the other replica lets the attempt run', async () => {
    const a = await t.app.bus.requestClaim(claim, 5_000);
    return a?.verdict === 'later' ? undefined : a;
  });
  expect(answer).toMatchObject({ verdict: 'run', execution: 1, attemptKey: drawn!.key });
  // The dispatching replica's reservation is still there: a first ask there would run execution 0, a number apart.
  expect((await counting(claim)).answer).toMatchObject({ verdict: 'run', execution: 0, attemptKey: drawn!.key });
});

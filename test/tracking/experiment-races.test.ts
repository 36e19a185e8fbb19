// An experiment deleted while runs and models are being made in it, on real Postgres: the test's transaction deletes
// it as changeExperiment does (the row FOR UPDATE, then deleted_at set) and holds it open while an MLflow client's
// runs/create or logged-models, or a startRun naming it, is sent; each waits for it and is then refused as into a
// deleted experiment. Before, each read the experiment before the delete committed, its foreign key waited for the
// delete's row lock (FOR KEY SHARE against its FOR UPDATE), and the run or model landed in the experiment the delete
// had just committed.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let t: TestApp;
let alice: ApiClient & { token: string };

beforeAll(async () => {
  pg = await startPostgres();
  t = await startTestApp({ DATABASE_URL: pg.url, ATELIER_EMBEDDED_EXECUTOR: '0' });
  await t.publishFixture('echo');
  alice = await t.user('alice-races');
  await t.createWorkflow({ name: 'races', domain: 'experimentation', tasks: [{ name: 'hello', module: 'test/echo' }] });
}, 120_000);
afterAll(async () => {
  await t?.stop();
  await pg?.stop();
});

const db = () => t.app.database.db;
const waiting = async () =>
  (
    await queryRows<{ n: number }>(db(), sql`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`)
  )[0]!.n;

/** Runs `make` while a delete of experiment `id` is in flight; commits the delete once `make` waits on it. */
async function whileDeleting<T>(id: string, make: () => Promise<T>): Promise<T> {
  let made: Promise<T> | undefined;
  await db().transaction(async (tx) => {
    await tx.execute(sql`select id from experiments where id = ${id} for update`);
    await tx.execute(sql`update experiments set deleted_at = now() where id = ${id}`);
    made = make();
    made.catch(() => {}); // awaited below
    for (let i = 0; i < 500 && (await waiting()) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await waiting()).toBeGreaterThan(0);
  });
  return made!;
}

const runsIn = async (id: string) => (await queryRows<{ n: number }>(db(), sql`select count(*)::int as n from runs where experiment_id = ${id}`))[0]!.n;

const post = async (path: string, body: unknown) => {
  const res = await fetch(`${t.url}/api/2.0/mlflow/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};

it("an MLflow client's runs/create into an experiment being deleted waits for the delete and is refused", async () => {
  const made = await post('experiments/create', { name: 'deleted-under-mlflow' });
  const id = made.body.experiment_id as string;
  const created = await whileDeleting(id, () => post('runs/create', { experiment_id: id }));
  expect(created.body.error_code).toBe('INVALID_PARAMETER_VALUE');
  expect(created.body.message).toContain('is deleted');
  expect(await runsIn(id)).toBe(0);
});

it('a startRun naming an experiment being deleted waits for the delete and is refused', async () => {
  const first = await alice.gql(`mutation { startRun(workflow: "races", experiment: "deleted-under-start") { experiment { id } } }`);
  const id = first.startRun.experiment.id as string;
  const started = await whileDeleting(id, () => alice.raw(`mutation { startRun(workflow: "races", experiment: "deleted-under-start") { id } }`));
  expect(started.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  expect(started.errors?.[0]?.message).toContain('is deleted');
  expect(await runsIn(id)).toBe(1);
});

it("an MLflow client's logged model made in an experiment being deleted waits for the delete and is refused", async () => {
  const id = (await post('experiments/create', { name: 'deleted-under-log-model' })).body.experiment_id as string;
  const created = await whileDeleting(id, () => post('logged-models', { experiment_id: id, name: 'm' }));
  expect(created.body.error_code).toBe('INVALID_PARAMETER_VALUE');
  expect(created.body.message).toContain('is deleted');
  const [row] = await queryRows<{ n: number }>(db(), sql`select count(*)::int as n from logged_models where experiment_id = ${id}`);
  expect(row!.n).toBe(0);
});

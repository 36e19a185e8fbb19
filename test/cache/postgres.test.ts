// The reservation race on real PostgreSQL: two control-plane replicas on one database start identical tasks at
// the same moment; the key's reservation lets exactly one of them execute and the others wait and hit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { type PostgresServer, startPostgres } from '../harness/postgres';

describe('task cache on postgres', () => {
  let pg: PostgresServer;
  const replicas: TestApp[] = [];
  beforeAll(async () => {
    pg = await startPostgres();
    const first = await startTestApp({ DATABASE_URL: pg.url });
    // Replicas share one object store (a second one is refused): here the first one's directory.
    const objects = { ATELIER_OBJECTS_DIR: `${first.dataDir}/objects` };
    replicas.push(first, await startTestApp({ DATABASE_URL: pg.url, ATELIER_ADMIN_TOKEN: first.app.adminToken, ...objects }));
    await first.publishFixture('keyed');
    await first.createWorkflow({ name: 'race', tasks: [{ name: 'work', module: 'test/keyed', parameters: { ms: 300, tag: 'race' } }] });
  }, 60_000);
  afterAll(async () => {
    for (const r of replicas) await r.stop();
    await pg?.stop();
  });

  it('executes identical tasks started on two replicas at once only once', async () => {
    const started = await Promise.all(Array.from({ length: 6 }, (_, i) => replicas[i % 2]!.api.gql(`mutation { startRun(workflow: "race") { id } }`)));
    const ids = started.map((s) => s.startRun.id as string);
    // Polled, not subscribed: with the in-process bus a replica's live feed carries only its own transitions.
    const runOf = async (id: string) =>
      (await replicas[0]!.api.gql(`query ($id: ID!) { run(id: $id) { status tasks { attempt cacheHit { sourceTask { id } } } } }`, { id })).run;
    let runs = await Promise.all(ids.map(runOf));
    while (runs.some((r) => r.status === 'QUEUED' || r.status === 'RUNNING')) {
      await new Promise((r) => setTimeout(r, 100));
      runs = await Promise.all(ids.map(runOf));
    }
    expect(runs.every((r) => r.status === 'SUCCEEDED')).toBe(true);
    const executed = runs.filter((r) => r.tasks[0].attempt > 0);
    expect(executed).toHaveLength(1);
    expect(new Set(runs.filter((r) => r.tasks[0].cacheHit).map((r) => r.tasks[0].cacheHit.sourceTask.id)).size).toBe(1);
  });
});

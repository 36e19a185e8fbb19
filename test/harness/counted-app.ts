// The world of the tests that count what the recorder and the starts cost on the database (test/db/*-round-trips,
// edge-children, event-serializations): a Postgres of the file's own, an app on it with no executor host (the runs'
// tasks stay queued and the test reports for them), fixture modules published, alice in team ml with the file's
// workflows, and an orchestrator beside the app on a counting pool (counted-orchestrator.ts).
import { afterAll, beforeAll } from 'vitest';
import type { Db } from '../../server/db/client';
import { startTestApp, type TestApp } from './app';
import type { ApiClient } from './client';
import { type CountedOrchestrator, countedOrchestrator } from './counted-orchestrator';
import { type PostgresServer, startPostgres } from './postgres';

export interface CountedAppOptions {
  /** Workflow specs alice creates in team ml, in order. */
  workflows: object[];
  /** Fixture modules published before the workflows (test/fixtures/modules); default `['sleep']`. */
  fixtures?: string[];
  /** More of the app's environment. */
  env?: Record<string, string>;
}

export interface CountedApp {
  pg: PostgresServer;
  t: TestApp;
  db: Db;
  alice: ApiClient & { token: string };
  /** An orchestrator of its own on a counting pool: a replica beside the app's control plane. */
  counted: CountedOrchestrator;
  /** Each fixture's published version, by name. */
  versions: Record<string, string>;
  /** Creates a workflow, or a new version of it, as alice in team ml. */
  createWorkflow(spec: object): Promise<void>;
}

/**
 * Starts the world in the file's `beforeAll` and stops it in its `afterAll`; its fields are there from the file's
 * first test on. A file's own `beforeAll`, registered after this call, runs after the world is up.
 */
export function countedApp(options: CountedAppOptions): CountedApp {
  const world = {
    async createWorkflow(spec: object) {
      await world.alice.gql(`mutation ($s: String!) { createWorkflow(spec: $s, team: "ml") { created } }`, { s: JSON.stringify(spec) });
    },
  } as CountedApp;
  beforeAll(async () => {
    world.pg = await startPostgres();
    // A sweep a minute: none moves a run while a test counts what its own calls cost.
    world.t = await startTestApp({ DATABASE_URL: world.pg.url, ATELIER_EMBEDDED_EXECUTOR: '0', ATELIER_TICK_MS: '60000', ...options.env });
    world.db = world.t.app.services.db;
    world.versions = {};
    for (const name of options.fixtures ?? ['sleep']) world.versions[name] = (await world.t.publishFixture(name)).version;
    world.alice = await world.t.user('alice');
    await world.t.team('ml', ['alice']);
    for (const spec of options.workflows) await world.createWorkflow(spec);
    world.counted = countedOrchestrator(world.pg.url);
  }, 120_000);
  afterAll(async () => {
    await world.counted?.end();
    await world.t?.stop();
    await world.pg?.stop();
  });
  return world;
}

/** `one-task`: one task, `work`, running `module` (test/sleep by default) for a millisecond. */
export const oneTask = (module = 'test/sleep') => ({ name: 'one-task', tasks: [{ name: 'work', module, parameters: { ms: 1 } }] });

// What scheduler tests run on: the real database (PGlite, or a shared Postgres for replicas), the real
// orchestrator and the `test/echo` fixture module, with no executor host and no outbox relay, so a started run
// stays QUEUED until a test cancels it. Time is a settable clock.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { packDirectory } from '../../server/artifacts/archive';
import { createFileObjectStore } from '../../server/artifacts/store';
import { defineAbilityFor } from '../../server/auth/ability';
import { type Database, type Db, openDatabase } from '../../server/db/client';
import { type Run, runs } from '../../server/db/tables/runs';
import { type ScheduleFire, scheduleFires } from '../../server/db/tables/schedules';
import { createRunFeed } from '../../server/events/feed';
import { publishModuleVersion } from '../../server/modules/publish';
import { createOrchestrator, type Orchestrator } from '../../server/orchestrator/orchestrator';
import { createWorkflow } from '../../server/workflows/versions';
import { fixturesDir } from '../harness/app';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

export interface Clock {
  now(): Date;
  set(iso: string | Date): Date;
}

export function createClock(start: string): Clock {
  let current = new Date(start);
  return {
    now: () => new Date(current),
    set: (iso) => (current = new Date(iso)),
  };
}

export interface Stack {
  database: Database;
  db: Db;
  orchestrator: Orchestrator;
  createWorkflow(spec: object): Promise<void>;
  firesOf(scheduleId: string): Promise<ScheduleFire[]>;
  runOf(id: string): Promise<Run>;
  close(): Promise<void>;
}

const defaults = { timeoutMs: 60_000, executor: 'local' };

/** Opens a stack; with `url`, on that Postgres (several stacks on one URL are replicas). */
export async function openStack(options: { url?: string; publish?: boolean } = {}): Promise<Stack> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-scheduler-'));
  if (!options.url) await seedEmbeddedDatabase(dataDir);
  const database = await openDatabase({ url: options.url, dataDir });
  const { db } = database;
  const orchestrator = createOrchestrator({ db, feed: createRunFeed(), onOutbox: () => {}, defaults });
  if (options.publish !== false) {
    const store = createFileObjectStore(path.join(dataDir, 'objects'));
    await publishModuleVersion(
      db,
      store,
      defineAbilityFor({ id: 'test', role: 'admin' }),
      { archive: await packDirectory(path.join(fixturesDir, 'modules', 'echo')), tags: ['latest'] },
      null,
    );
  }
  return {
    database,
    db,
    orchestrator,
    async createWorkflow(spec) {
      await createWorkflow(db, spec, null, defaults);
    },
    firesOf: (scheduleId) => db.select().from(scheduleFires).where(eq(scheduleFires.scheduleId, scheduleId)).orderBy(scheduleFires.fireTime),
    runOf: async (id) => (await db.select().from(runs).where(eq(runs.id, id)))[0]!,
    async close() {
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

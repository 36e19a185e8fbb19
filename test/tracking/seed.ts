// Runs with metrics, params and tags written straight to the database, for the tracking tests: what the executor
// path and the MLflow routes store, without running anything.
import { randomUUID } from 'node:crypto';
import type { Db } from '../../server/db/client';
import { runs } from '../../server/db/tables/runs';
import { loggedParams, runTags } from '../../server/db/tables/tracking';
import { namedExperiment } from '../../server/tracking/experiments';
import { storeMetricPoints } from '../../server/tracking/metrics';
import type { Domain, RunStatus } from '../../server/vocabulary';

export interface SeedRun {
  experiment?: string;
  domain?: Domain;
  status?: RunStatus;
  parameters?: Record<string, unknown>;
  logged?: Record<string, string>;
  tags?: Record<string, string>;
  /** Per task, the points it reported in order: [name, value, step?]. */
  tasks?: [string, number, number?][][];
  createdAt?: Date;
  deleted?: boolean;
  name?: string;
}

let clock = Date.parse('2026-06-01T00:00:00Z');

/** Inserts one run (trigger EXTERNAL, no workflow) and its data; returns its id. */
export async function seedRun(db: Db, seed: SeedRun): Promise<string> {
  const experiment = await namedExperiment(db, seed.experiment ?? 'seeded', null);
  const [run] = await db
    .insert(runs)
    .values({
      experimentId: experiment.id,
      status: seed.status ?? 'SUCCEEDED',
      trigger: 'EXTERNAL',
      domain: seed.domain ?? 'experimentation',
      parameters: seed.parameters ?? {},
      name: seed.name ?? null,
      createdAt: seed.createdAt ?? new Date(clock++),
      deletedAt: seed.deleted ? new Date() : null,
    })
    .returning();
  const runId = run!.id;
  for (const points of seed.tasks ?? []) {
    const taskId = randomUUID();
    await storeMetricPoints(
      db,
      points.map(([name, value, step], i) => ({ taskId, runId, attempt: 1, seq: i + 1, name, value, step: step ?? i, at: new Date(clock++) })),
    );
    for (const [key, value] of Object.entries(seed.logged ?? {})) await db.insert(loggedParams).values({ taskId, runId, key, value }).onConflictDoNothing();
  }
  if (!seed.tasks?.length && seed.logged)
    for (const [key, value] of Object.entries(seed.logged)) await db.insert(loggedParams).values({ taskId: randomUUID(), runId, key, value });
  for (const [key, value] of Object.entries(seed.tags ?? {})) await db.insert(runTags).values({ runId, key, value });
  return runId;
}

// Who may download a model version's files through `GET /artifacts/<digest>` (server/http/routes/artifacts.ts): an
// executor host in another process fetches them for the tasks pinned to that version (batch inference's `models:`).
// Two ways in, both narrow:
// - the task's own token (the one its claim's answer carries, MLFLOW_TRACKING_TOKEN inside the task): the files of the
//   model versions pinned on that task, while the token lives (its attempt's timeout);
// - any other token that may read the version's files (`files` is run data of the version's domain: the same rule as
//   `ModelVersion.files` over GraphQL).
// A digest no readable version lists answers exactly like one no version lists.
import { subject } from '@casl/ability';
import { eq, sql } from 'drizzle-orm';
import type { AppAbility } from '../auth/ability';
import type { Db } from '../db/client';
import { modelVersions } from '../db/tables/registry';
import { tasks } from '../db/tables/runs';

export interface FileReader {
  ability: AppAbility;
  /** Set for a task's own token. */
  task: { id: string; attempt: number } | null;
}

/** Whether `reader` may download the object `digest` as a file of a model version. */
export async function mayReadModelFile(db: Db, reader: FileReader, digest: string): Promise<boolean> {
  const listed = sql`${modelVersions.files} @> ${JSON.stringify([{ digest }])}::jsonb`;
  if (reader.task) {
    const [task] = await db.select({ models: tasks.models }).from(tasks).where(eq(tasks.id, reader.task.id));
    return Object.values(task?.models ?? {}).some((m) => m.files.some((f) => f.digest === digest));
  }
  const versions = await db.select().from(modelVersions).where(listed).limit(100);
  return versions.some((v) => reader.ability.can('read', subject('ModelVersion', { ...v }), 'files'));
}

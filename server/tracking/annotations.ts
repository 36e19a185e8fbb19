// A run's tags and note: free annotations, editable after the run ended, by whoever may start runs in the run's
// domain (the people who could have made such a run may label it). Each row records who set it and when; a refused
// write is recorded in the audit log and changes nothing.
import { subject } from '@casl/ability';
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { type AppAbility, assertCan } from '../auth/ability';
import { refuse } from '../auth/refuse';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type Run, runs } from '../db/tables/runs';
import { type RunTag, runTags } from '../db/tables/tracking';
import { badInput, notFound } from '../errors';
import { LIMITS } from './logging';

// MLflow's limits, the same for tags set here and through the MLflow routes (server/tracking/logging.ts).
const MAX_TAG_KEY = LIMITS.keyLength;
const MAX_TAG_VALUE = LIMITS.tagValueLength;
const MAX_TAGS_PER_CALL = LIMITS.batchTags;
/** A note of at most 64 KiB (UTF-8). */
export const MAX_NOTE_BYTES = 64 * 1024;

export interface TagInput {
  key: string;
  value: string;
}

/** Refuses a tag that breaks a limit, naming which (before anything is written). */
export function checkTags(tags: readonly TagInput[]): void {
  if (tags.length > MAX_TAGS_PER_CALL) throw badInput(`At most ${MAX_TAGS_PER_CALL} tags per call; got ${tags.length}. Split them over several calls.`);
  const seen = new Set<string>();
  tags.forEach((t, i) => {
    if (!t.key || t.key.length > MAX_TAG_KEY)
      throw badInput(`tags.${i}.key must be 1 to ${MAX_TAG_KEY} characters; got ${t.key.length}.`, [{ path: `tags.${i}.key`, message: 'bad length' }]);
    if (t.value.length > MAX_TAG_VALUE)
      throw badInput(`tags.${i}.value (key "${t.key}") must be at most ${MAX_TAG_VALUE} characters; got ${t.value.length}.`, [
        { path: `tags.${i}.value`, message: 'too long' },
      ]);
    if (seen.has(t.key)) throw badInput(`tags.${i}.key "${t.key}" is given twice; give each key once.`, [{ path: `tags.${i}.key`, message: 'duplicate' }]);
    seen.add(t.key);
  });
}

/** The run (not deleted) the caller may annotate, or NOT_FOUND / an audited FORBIDDEN. */
async function annotatable(db: Db, ability: AppAbility, caller: Identity, runId: string, action: string): Promise<Run> {
  assertCan(ability, 'read', 'Run', 'read runs');
  const [run] = await db.select().from(runs).where(eq(runs.id, runId));
  if (!run || run.deletedAt) throw notFound(`No run ${runId}; \`atelier run list\` shows the recent ones.`);
  if (!ability.can('start', subject('Run', { domain: run.domain }))) {
    return refuse(
      db,
      { identity: caller, action, subject: `run:${run.id}`, rule: 'a run is annotated by who may start runs in its domain', details: { domain: run.domain } },
      ability.can('start', 'Run')
        ? `Tagging or noting ${run.domain} runs needs a grant to one of your teams (the right to start runs there): an admin runs \`npx atelier team grant TEAM ${run.domain}\`.`
        : 'Your role may not tag or note runs (it may not start them); ask an admin for the member role.',
    );
  }
  return run;
}

/** Sets (adds or replaces) tags on a run; returns the run. */
export async function setRunTags(db: Db, ability: AppAbility, caller: Identity, runId: string, tags: readonly TagInput[]): Promise<Run> {
  checkTags(tags);
  const run = await annotatable(db, ability, caller, runId, 'run.tag');
  if (!tags.length) return run;
  await db
    .insert(runTags)
    .values(tags.map((t) => ({ runId: run.id, key: t.key, value: t.value, setBy: caller.id, setAt: new Date() })))
    .onConflictDoUpdate({
      target: [runTags.runId, runTags.key],
      set: { value: sql`excluded.value`, setBy: sql`excluded.set_by`, setAt: sql`excluded.set_at` },
    });
  return run;
}

/** Removes one tag (a missing key is no error: the tag is gone either way). */
export async function deleteRunTag(db: Db, ability: AppAbility, caller: Identity, runId: string, key: string): Promise<Run> {
  const run = await annotatable(db, ability, caller, runId, 'run.tag');
  await db.delete(runTags).where(and(eq(runTags.runId, run.id), eq(runTags.key, key)));
  return run;
}

/** Sets the note (an empty one clears it), recording who and when. */
export async function setRunNote(db: Db, ability: AppAbility, caller: Identity, runId: string, note: string): Promise<Run> {
  const bytes = Buffer.byteLength(note, 'utf8');
  if (bytes > MAX_NOTE_BYTES) throw badInput(`note must be at most ${MAX_NOTE_BYTES} bytes (64 KiB); got ${bytes}.`, [{ path: 'note', message: 'too long' }]);
  const run = await annotatable(db, ability, caller, runId, 'run.note');
  const [updated] = await db
    .update(runs)
    .set(note ? { note, noteBy: caller.id, noteAt: new Date() } : { note: null, noteBy: caller.id, noteAt: new Date() })
    .where(eq(runs.id, run.id))
    .returning();
  return updated ?? run;
}

/** The tags of each run, by key. */
export const tagsOfRuns = (db: Db, runIds: string[]): Promise<RunTag[]> =>
  db.select().from(runTags).where(inArray(runTags.runId, runIds)).orderBy(asc(runTags.key));

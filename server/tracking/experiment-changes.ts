// Changing an experiment after it was made: renaming it, deleting and restoring it (MLflow's lifecycle_stage; its runs
// are kept), and its tags. Who may: as for what a team owns (server/teams/ownership.ts): admins, the writing members
// of its owning team, or its creator when it has none; never a task's token. Each decision is audited. MLflow's
// `experiments/update`, `delete`, `restore`, `set-experiment-tag` and `delete-experiment-tag` and the
// `updateExperiment` mutation come here.
import { eq } from 'drizzle-orm';
import { audited } from '../audit/audit';
import type { Db } from '../db/client';
import { type Experiment, experiments } from '../db/tables/tracking';
import { badInput, conflict, notFound } from '../errors';
import { assertOwnerMay, type Owned, ownerOf } from '../teams/ownership';
import type { Caller } from './access';
import { assertMayWriteExperiments, checkExperimentTags, experimentName } from './experiments';
import { DEFAULT_EXPERIMENT, findExperiment } from './external-runs';
import type { KeyValue } from './logging';

export interface ExperimentChange {
  name?: string;
  /** true: deleted (its runs kept, new runs refused); false: restored. */
  deleted?: boolean;
  setTags?: KeyValue[];
  deleteTags?: string[];
}

/** What the change does, for its audit record and a refusal's words: one verb, or `change` for several. */
function verbOf(change: ExperimentChange): string {
  const verbs = [
    change.name !== undefined && 'rename',
    change.deleted === true && 'delete',
    change.deleted === false && 'restore',
    (change.setTags?.length || change.deleteTags?.length) && 'tag',
  ].filter((v): v is string => typeof v === 'string');
  if (!verbs.length) throw badInput('Nothing to change: give a new name, deleted, or tags to set or remove.');
  return verbs.length === 1 ? verbs[0]! : 'change';
}

/**
 * Whose the experiment is, for a change: its team's or creator's; Default, where runs that name none go, is everyone's
 * (whoever's run or request happened to make it first owned it, and could tag it): only admins change it.
 */
export const experimentOwned = (e: Experiment): Owned => (e.name === DEFAULT_EXPERIMENT ? { teamId: null, createdBy: null } : e);

/** Applies `change` to the experiment (an id, a name, or `0` for Default), checked and audited; returns it after. */
export async function changeExperiment(db: Db, caller: Caller, ref: string, change: ExperimentChange): Promise<Experiment> {
  assertMayWriteExperiments(caller);
  const name = change.name === undefined ? undefined : experimentName(change.name);
  checkExperimentTags(change.setTags ?? []);
  const verb = verbOf(change);
  return audited(db, () =>
    db.transaction(async (tx) => {
      const found = await findExperiment(tx, ref === '0' ? DEFAULT_EXPERIMENT : ref);
      if (!found) throw notFound(`No experiment ${ref}; \`atelier experiment list\` (or the experiments query) shows them.`);
      const [experiment] = await tx.select().from(experiments).where(eq(experiments.id, found.id)).for('update');
      const current = experiment ?? found;
      const label = `Experiment "${current.name}"`;
      // Default stays for everyone: said as such to whoever asks, before whose it is.
      if (current.name === DEFAULT_EXPERIMENT && (name !== undefined || change.deleted === true))
        throw badInput(`${label} (id 0) is where runs go that name none: it cannot be renamed or deleted.`);
      await assertOwnerMay(
        tx,
        ownerOf(caller.identity, caller.ability),
        experimentOwned(current),
        { action: `experiment.${verb}`, subject: `experiment:${current.name}`, label },
        verb,
      );
      if (current.workflowId && change.deleted === true)
        throw badInput(`${label} is its workflow's own: the workflow's runs are grouped there for as long as it exists. Rename or tag it instead.`);
      // A Map, not an object: a tag named __proto__ is a tag (assigned on an object it was dropped without a word).
      const tags = new Map(Object.entries(current.tags));
      for (const key of change.deleteTags ?? [])
        if (!tags.delete(key)) throw notFound(`${label} has no tag "${key}"; \`atelier experiment list\` shows its tags.`);
      for (const { key, value } of change.setTags ?? []) tags.set(key, value);
      if (name !== undefined && name !== current.name) {
        const [taken] = await tx.select({ id: experiments.id }).from(experiments).where(eq(experiments.name, name));
        if (taken) throw conflict(`An experiment named "${name}" already exists: pick another name.`);
      }
      try {
        const [after] = await tx
          .update(experiments)
          .set({
            ...(name !== undefined ? { name } : {}),
            ...(change.deleted === true ? { deletedAt: current.deletedAt ?? new Date() } : change.deleted === false ? { deletedAt: null } : {}),
            tags: Object.fromEntries(tags),
          })
          .where(eq(experiments.id, current.id))
          .returning();
        return after!;
      } catch (error) {
        // Renamed to a name another change took at the same moment.
        // (The driver's error, or drizzle's wrapping it as its cause.)
        const code = (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code;
        if (code === '23505') throw conflict(`An experiment named "${name}" already exists: pick another name.`);
        throw error;
      }
    }),
  );
}

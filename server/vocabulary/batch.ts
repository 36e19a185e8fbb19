// Batch inference's words: a task's model inputs pinned at run start, a dataset version's partitions, and the
// bounds of a run's priority.
import type { ModelFile } from './registry';

/** A model a task takes as input (`ns/model@alias` or `ns/model/3`), resolved once, when its run started. */
export interface ModelInput {
  /** As the spec named it; the alias is kept for display only, never resolved again. */
  ref: string;
  /** `namespace/name` of the registered model. */
  model: string;
  version: number;
  versionId: string;
  digest: string;
  files: ModelFile[];
}

/** One named part of a dataset version (a file or prefix of its data), what a batch workflow maps over. */
export interface DatasetPartition {
  name: string;
  /** Content digest of the partition's data (`sha256:…`). */
  digest: string;
  rows?: number;
}

/** A spec's `map.over` when it names a dataset's partitions (`{ partitionsOf: "ns/dataset[/VERSION]" }`), else null. */
export function partitionsSource(over: unknown): string | null {
  if (!over || typeof over !== 'object' || Array.isArray(over)) return null;
  const source = (over as { partitionsOf?: unknown }).partitionsOf;
  return typeof source === 'string' ? source : null;
}

/** A run's priority: higher dispatches first from a saturated pool; the default is 0. */
export const RUN_PRIORITY_MIN = -10;
export const RUN_PRIORITY_MAX = 10;
/**
 * Aging: each this many seconds a READY task waits counts as one priority level, so a task queued at T with
 * priority p goes before any task queued after T + (q - p) × this, whatever its priority q: nothing starves.
 */
export const PRIORITY_AGING_SECONDS = 30;

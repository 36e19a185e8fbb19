// What a task may touch in the datasets it declares (stored on the task, handed to its module as
// `ATELIER_DATASETS`), what a refusal says, and the columns of a dataset version.
import type { Label } from './labels';

export interface TaskDataAccess {
  inputs: Record<string, { dataset: string; version: number; digest: string; columns: string[]; labels: Record<string, Label> }>;
  outputs: Record<string, { dataset: string }>;
  /** The model versions the task reads by port, each with its label when the task was allowed (the join of the
   * labels of the columns it learned from); every column the task writes carries them too. */
  models?: Record<string, { model: string; version: number; versionId: string; label: Label }>;
}

export interface DataDenial {
  rule: string;
  message: string;
  /** `dataset.column` (or just the dataset) for each thing refused. */
  subjects: string[];
}

export interface DatasetColumn {
  name: string;
  type: string;
}

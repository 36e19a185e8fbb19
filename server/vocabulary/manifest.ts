// The module manifest's shape (`atelier.module.yaml`), the datasets a module declares, and what a version
// records about its source and its test. Validation lives in modules/manifest.ts.

export const MANIFEST_FILE = 'atelier.module.yaml';
export const runtimes = ['node', 'python3', 'shell'] as const;

export interface ModuleManifest {
  namespace: string;
  name: string;
  version?: string;
  description?: string;
  entrypoint: string;
  runtime: (typeof runtimes)[number];
  /** JSON Schema for the task parameters. */
  parameters?: Record<string, unknown>;
  resources?: { cpu?: number; memory?: string; gpus?: number; pool?: string; executor?: string };
  /** Default attempt time limit, in seconds. */
  timeoutSeconds?: number;
  /** `ttlSeconds`: how long a cached result may be reused. */
  cache?: { enabled?: boolean; version?: string; ttlSeconds?: number };
  test?: string;
  /** Datasets the module reads, with the columns it uses. */
  inputs?: DatasetPort[];
  /** Datasets it writes; each column may name the input columns (`input.column`) it derives from. */
  outputs?: DatasetPort[];
}

export interface DatasetPort {
  /** How the module refers to it (its key in the task context). */
  name: string;
  /** The catalog dataset, `namespace/name`, when it is a fixed one. */
  dataset?: string;
  description?: string;
  columns?: ColumnSpec[];
}

export interface ColumnSpec {
  name: string;
  type?: string;
  description?: string;
  /** Lineage: the input columns (`input.column`) this column derives from; `[]` for none. Unknown when absent. */
  from?: string[];
}

export interface ModuleSource {
  repository?: string | null;
  commit?: string | null;
  branch?: string | null;
  dirty?: boolean | null;
}

export interface ModuleTestResult {
  command: string;
  passed: boolean;
  exitCode: number | null;
  durationMs: number;
  /** The last lines of its output. */
  output: string;
}

// The parts of a task's cache key, stored with each entry so a miss can be explained component by component.
// How the key is computed lives in cache/key.ts.

export interface KeyComponents {
  /** Changes when this encoding changes, so entries written under an older one are never matched. */
  format: 1;
  /** The module version's artifact digest. */
  module: string;
  entrypoint: string;
  /** Parameter name → digest of its canonical value (after run-parameter and upstream-output substitution). */
  parameters: Record<string, string>;
  /** Upstream node → digest of the canonical outputs the task receives from it. */
  inputs: Record<string, string>;
  /** Digest of the column projection the task receives (the manifest's declared inputs; none yet). */
  projection: string;
  /** The module's `cache.version`: bumping it invalidates every earlier result. */
  cacheVersion: string;
  /** The data domain: results never cross domains. */
  scope: string;
}

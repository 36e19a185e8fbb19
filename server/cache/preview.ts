// Which tasks of a workflow would be served from cache if it started now with these parameters: the run is planned
// (nothing is written) and walked in dependency order, each module task's key computed from its upstreams' cached
// outputs; a task downstream of one that executes cannot be known before then, so it is a miss. Only entries the
// caller may read can hit: any other answers exactly as a key with no entry does (a preview is no oracle for guessing
// another domain's parameters), and withholding one is audited.

import { and, eq, inArray } from 'drizzle-orm';
import { audit } from '../audit/audit';
import type { Db } from '../db/client';
import { runs } from '../db/tables/runs';
import { workflows, workflowVersions } from '../db/tables/workflows';
import { notFound } from '../errors';
import type { Domain } from '../vocabulary';
import { type PlanDefaults, planRun } from '../workflows/plan';
import { resolveRunParameters, substituteOutputs } from '../workflows/spec';
import { type CacheReader, readRule } from './access';
import { cacheable, cacheKey, cacheScope, keyComponents } from './key';
import { assertMayUseCacheNamespace } from './namespaces';
import type { TaskCache } from './store';

export interface PreviewTask {
  node: string;
  hit: boolean;
  key: string | null;
  reason: string;
  sourceTaskId: string | null;
  sourceRunId: string | null;
  savedMs: number | null;
}

export interface PreviewInput {
  workflow: string;
  version?: number;
  parameters: Record<string, unknown>;
  /** Default: the workflow's domain, as a run would have. */
  domain?: Domain;
  cacheNamespace?: string;
}

export interface PreviewServices {
  db: Db;
  cache: TaskCache;
  planDefaults: PlanDefaults;
}

/** What a node without a usable entry says, whether there is none or the caller may not read it. */
export const NO_ENTRY = 'no usable entry of its key';

export async function previewRun({ db, cache, planDefaults }: PreviewServices, input: PreviewInput, reader: CacheReader): Promise<PreviewTask[]> {
  const [workflow] = await db.select().from(workflows).where(eq(workflows.name, input.workflow));
  if (!workflow) throw notFound(`No workflow "${input.workflow}". Create it with \`npx atelier workflow create FILE\` or the createWorkflow mutation.`);
  const wanted = input.version ?? workflow.latestVersion;
  const [version] = await db
    .select()
    .from(workflowVersions)
    .where(and(eq(workflowVersions.workflowId, workflow.id), eq(workflowVersions.version, wanted)));
  if (!version) throw notFound(`Workflow "${workflow.name}" has no version ${wanted}; its latest is ${workflow.latestVersion}.`);
  const parameters = resolveRunParameters(version.spec, input.parameters);
  if (input.cacheNamespace) await assertMayUseCacheNamespace(db, input.cacheNamespace, reader.identity);
  let withheld = 0;
  const preview = await db.transaction(async (tx) => {
    const planned = await planRun(tx, version.spec, parameters, planDefaults);
    const byNode = new Map(planned.map((p) => [p.node, p]));
    const outputs = new Map<string, Record<string, unknown>>();
    const result = new Map<string, PreviewTask>();
    const visit = async (node: string): Promise<PreviewTask> => {
      const known = result.get(node);
      if (known) return known;
      const p = byNode.get(node)!;
      const miss = (reason: string, key: string | null = null): PreviewTask => ({
        node,
        hit: false,
        key,
        reason,
        sourceTaskId: null,
        sourceRunId: null,
        savedMs: null,
      });
      let decided: PreviewTask;
      const upstream = [];
      for (const d of p.dependsOn) upstream.push(await visit(d));
      const executes = upstream.find((u) => !u.hit);
      if (p.kind !== 'module') decided = miss(`a ${p.kind} node is decided when it runs`);
      else if (executes) decided = miss(`its upstream ${executes.node} executes, so its inputs are not known yet`);
      else if (!cacheable(p.version!.manifest)) decided = miss(`${p.moduleRef} opts out of caching`);
      else {
        const missing: string[] = [];
        const wired = substituteOutputs(p.parameters, outputs, missing) as Record<string, unknown>;
        const components = keyComponents({
          digest: p.version!.digest,
          manifest: p.version!.manifest,
          parameters: wired,
          inputs: Object.fromEntries(p.dependsOn.map((d) => [d, outputs.get(d) ?? {}])),
          scope: cacheScope({ domain: input.domain ?? workflow.domain, cacheNamespace: input.cacheNamespace }),
        });
        const key = cacheKey(components);
        const entry = (await cache.lookup(tx, [key], new Date())).get(key);
        const [source] = entry
          ? await tx
              .select()
              .from(runs)
              .where(inArray(runs.id, [entry.sourceRunId]))
          : [];
        if (!entry || !source) decided = miss(NO_ENTRY, key);
        else if (!reader.mayRead(source)) {
          withheld++;
          decided = miss(NO_ENTRY, key);
        } else {
          outputs.set(node, entry.outputs);
          decided = {
            node,
            hit: true,
            key,
            reason: 'served from cache',
            sourceTaskId: entry.sourceTaskId,
            sourceRunId: entry.sourceRunId,
            savedMs: entry.durationMs,
          };
        }
      }
      result.set(node, decided);
      return decided;
    };
    for (const p of planned) await visit(p.node);
    return planned.map((p) => result.get(p.node)!);
  });
  if (withheld) {
    await audit(db, {
      identity: reader.identity,
      action: 'cache.preview',
      decision: 'deny',
      subject: `workflow:${workflow.name}`,
      rule: readRule,
      details: { withheld },
    });
  }
  return preview;
}

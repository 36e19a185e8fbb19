// The lineage of one version as a graph (the DAG component's dagre layout): the dataset versions it read (with their
// columns and labels) and those its run's MLflow client declared, the run and producing task, the version, and the
// aliases pointing at it. Nodes lead to their
// pages: a dataset to the dataset, the task to its run.

import { Dag, type DagNode } from '../../components/dag';
import { formatLabel } from '../../components/label-chips';
import { taskHref } from '../../components/links';
import { QueryState } from '../../components/states';
import { useQuery } from '../../lib/query';
import { navigate } from '../../router';
import { LINEAGE } from './documents';

const datasetHref = (name: string) => `/datasets/${name.split('/').map(encodeURIComponent).join('/')}`;

export function LineageCard({ model, version }: { model: string; version: number }) {
  const [result] = useQuery({ query: LINEAGE, variables: { ref: `${model}@${version}` } });
  const found = result.data?.modelVersion;
  return (
    <div class="card" data-lineage-version={version}>
      <h2 class="card-title">
        Lineage <span class="muted">of version {version}</span>
      </h2>
      <QueryState data={found?.lineage} error={result.error} errorTitle="This version’s lineage could not be read" loading="Loading the lineage…">
        {(lineage) => {
          const runId = lineage.run.id;
          const taskNode = `task:${lineage.task.id}`;
          const versionNode = `version:${version}`;
          // One node per dataset name and digest (a run's tasks may declare the same one).
          const declared = [...new Map(lineage.loggedDatasets.map((d) => [`${d.name}@${d.digest}`, d])).values()];
          const nodes: DagNode[] = [
            ...lineage.datasets.map((d) => ({
              id: `dataset:${d.name}@${d.version}`,
              label: `${d.name}@${d.version}`,
              status: 'SPEC',
              progress: null,
              dependsOn: [],
              detail: d.columns.map((c) => `${c.name} ${formatLabel(c.label)}`).join(', '),
            })),
            // What the run's MLflow client declared it read: shown beside the traced datasets, not counted in labels.
            ...declared.map((d) => ({
              id: `declared:${d.name}@${d.digest}`,
              label: `${d.name} (declared)`,
              status: 'SPEC',
              progress: null,
              dependsOn: [],
              detail: [d.context, d.sourceType, d.digest].filter(Boolean).join(' · '),
            })),
            {
              id: taskNode,
              label: `${lineage.run.workflow?.name ?? 'run'} · ${lineage.task.node}`,
              status: 'SPEC',
              progress: null,
              dependsOn: [...lineage.datasets.map((d) => `dataset:${d.name}@${d.version}`), ...declared.map((d) => `declared:${d.name}@${d.digest}`)],
              detail: `run ${runId.slice(0, 8)}${lineage.moduleVersions.length ? ` · ${lineage.moduleVersions.map((m) => m.ref).join(', ')}` : ''}`,
            },
            { id: versionNode, label: `version ${version}`, status: 'SPEC', progress: null, dependsOn: [taskNode], detail: `${model}@${version}` },
            ...(found?.aliases ?? []).map((a) => ({
              id: `alias:${a.alias}`,
              label: a.alias,
              status: 'SPEC',
              progress: null,
              dependsOn: [versionNode],
              detail: 'alias',
            })),
          ];
          return (
            <>
              <Dag
                label={`Lineage of ${model}@${version}`}
                selected={versionNode}
                nodes={nodes}
                onSelect={(id) => {
                  if (id === taskNode) navigate(taskHref(runId, lineage.task.node));
                  else if (id.startsWith('dataset:')) navigate(datasetHref(id.slice('dataset:'.length).replace(/@\d+$/, '')));
                }}
              />
              {lineage.cacheKey && (
                <p class="muted">
                  Cache key <code>{lineage.cacheKey.slice(0, 16)}</code>: retraining with identical inputs is a cache hit and registers nothing new.
                </p>
              )}
            </>
          );
        }}
      </QueryState>
    </div>
  );
}

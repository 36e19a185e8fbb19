// Where a dataset comes from: the datasets its latest version was computed from (the producing module's declared
// inputs), the task that wrote it, and the dataset itself, laid out by the DAG component (dagre). Each node leads
// to its page: a dataset to the dataset, the task to its run.
import { Dag } from '../../components/dag';
import { taskHref } from '../../components/links';
import { navigate } from '../../router';
import type { DatasetData } from './documents';

type Producer = NonNullable<DatasetData['versions'][number]['producedBy']>;

const datasetHref = (name: string) => {
  const [namespace, rest] = name.split('/');
  return `/datasets/${encodeURIComponent(namespace!)}/${encodeURIComponent(rest ?? '')}`;
};

export function LineageCard({ dataset }: { dataset: DatasetData }) {
  const latest = [...dataset.versions].sort((a, b) => b.version - a.version)[0];
  const producer: Producer | null | undefined = latest?.producedBy;
  if (!producer) {
    return (
      <div class="card">
        <h2 class="card-title">Lineage</h2>
        <p class="muted">Uploaded, not written by a run: it has no upstream datasets here.</p>
      </div>
    );
  }
  const manifest = (producer.moduleVersion?.manifest ?? {}) as { inputs?: { name: string; dataset?: string }[] };
  const inputs = [...new Set((manifest.inputs ?? []).flatMap((i) => (i.dataset ? [i.dataset] : [])))];
  const taskId = `task:${producer.node}`;
  const nodes = [
    ...inputs.map((name) => ({ id: name, label: name, status: 'SPEC', progress: null, dependsOn: [], detail: 'dataset' })),
    {
      id: taskId,
      label: producer.node,
      status: 'SPEC',
      progress: null,
      dependsOn: inputs,
      detail: producer.moduleVersion?.ref ?? `run ${producer.run.id.slice(0, 8)}`,
    },
    { id: dataset.fullName, label: dataset.fullName, status: 'SUCCEEDED', progress: null, dependsOn: [taskId], detail: `version ${latest!.version}` },
  ];
  return (
    <div class="card">
      <h2 class="card-title">
        Lineage <span class="muted">of version {latest!.version}</span>
      </h2>
      <Dag
        label={`Lineage of ${dataset.fullName}`}
        selected={dataset.fullName}
        nodes={nodes}
        onSelect={(id) => navigate(id === taskId ? taskHref(producer.run.id, producer.node) : datasetHref(id))}
      />
    </div>
  );
}

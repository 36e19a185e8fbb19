// A model's page: its owner and requirements, versions (each selecting the lineage graph, and asking for a
// promotion), metrics side by side, aliases with history and rollback, the deployments serving it, and promotion requests to decide.

import { refetch } from '../../api/client';
import { NotFoundState, QueryState } from '../../components/states';
import { useQuery } from '../../lib/query';
import { useTitle } from '../../lib/title';
import { Link, useLocation } from '../../router';
import { AliasesCard, PromotionsCard } from './aliases';
import { DeploymentsCard } from './deployments';
import { MODEL } from './documents';
import { LineageCard } from './lineage';
import { MetricsCard, VersionsCard } from './versions';

export default function ModelPage({ fullName }: { fullName: string }) {
  useTitle(fullName);
  const { query } = useLocation();
  const [result, reexecute] = useQuery({ query: MODEL, variables: { name: fullName } });
  const refresh = refetch(reexecute);
  return (
    <QueryState
      data={result.data?.model}
      error={result.error}
      errorTitle="This model could not be loaded"
      retry={refresh}
      loading="Loading the model…"
      empty={<NotFoundState title={`No model named “${fullName}”`} href="/models" link="See all models" />}
    >
      {(model) => {
        const asked = Number(query.get('version'));
        const selected = model.versions.find((v) => v.version === asked)?.version ?? model.versions[0]?.version ?? null;
        return (
          <section aria-labelledby="model-title">
            <nav class="breadcrumbs" aria-label="Breadcrumbs">
              <Link href="/models">Models</Link> <span aria-hidden="true">/</span> <span>{model.fullName}</span>
            </nav>
            <div class="page-header">
              <h1 id="model-title">{model.fullName}</h1>
            </div>
            {model.description && <p class="lead">{model.description}</p>}
            <p class="muted">
              Team: {model.owner?.name ?? 'none'}
              {model.requirements.length > 0 &&
                ` · production needs ${model.requirements
                  .map((r) => [r.min != null && `${r.metric} ≥ ${r.min}`, r.max != null && `${r.metric} ≤ ${r.max}`].filter(Boolean).join(', '))
                  .join(', ')}`}
            </p>
            <PromotionsCard model={model} onChange={refresh} />
            <VersionsCard model={model} selected={selected} onChange={refresh} />
            <MetricsCard model={model} />
            <AliasesCard model={model} onChange={refresh} />
            <DeploymentsCard model={model.fullName} aliases={new Map(model.aliases.map((a) => [a.alias, a.version.version]))} />
            {selected !== null && <LineageCard model={model.fullName} version={selected} />}
          </section>
        );
      }}
    </QueryState>
  );
}

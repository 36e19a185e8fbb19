// The model page's deployments: those serving it (by alias or pinned version) that the caller may read, with their
// health, split and rollout, each linked to its page. Moving an alias on the page moves them: the card reads them
// again when the page's aliases change, and follows them live (`deploymentsChanged` of the model).

import { useEffect, useRef } from 'preact/hooks';
import { refetch } from '../../api/client';
import { LiveDownBanner } from '../../components/live-down';
import { QueryState } from '../../components/states';
import { graphql } from '../../graphql';
import { useQuery } from '../../lib/query';
import { DEPLOYMENT_ROW, DeploymentsTable, useFollowDeployments } from '../deployments-common';

const MODEL_DEPLOYMENTS = graphql(
  `
    query ModelDeployments($model: String!) {
      deployments(model: $model, first: 100) { ...DeploymentRow }
    }
  `,
  [DEPLOYMENT_ROW],
);

/** `aliases`: the versions the model's aliases name, as the page last read them. */
export function DeploymentsCard({ model, aliases }: { model: string; aliases: ReadonlyMap<string, number> }) {
  const [result, reexecute] = useQuery({ query: MODEL_DEPLOYMENTS, variables: { model }, requestPolicy: 'cache-and-network' });
  const key = [...aliases].join(',');
  const seen = useRef(key);
  useEffect(() => {
    if (seen.current === key) return;
    seen.current = key;
    reexecute({ requestPolicy: 'network-only' });
  }, [key]);
  const live = useFollowDeployments(reexecute, model);
  return (
    <div class="card" data-model-deployments={model}>
      <h2 class="card-title">Deployments</h2>
      <LiveDownBanner live={live} />
      <QueryState
        data={result.data?.deployments}
        error={result.error}
        errorTitle="Its deployments could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading its deployments…"
        empty={<p class="muted">No deployment serves this model.</p>}
      >
        {(rows) => <DeploymentsTable label="Deployments of this model" rows={rows} wrap={false} />}
      </QueryState>
    </div>
  );
}

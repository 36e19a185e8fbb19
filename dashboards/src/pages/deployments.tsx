// The deployments you may read: what each serves, where and with which deployer, whether it is ready or failed
// over, its traffic split and its rollout. Live: the list is read again whenever a deployment the viewer may read
// is created, changes or is deleted (`deploymentsChanged`), including changes nobody here made (a failover, a
// monitor's rollback); a deployment's own page is live through `deploymentChanged`.

import { refetch } from '../api/client';
import { LiveDownBanner } from '../components/live-down';
import { EmptyState, QueryState } from '../components/states';
import { graphql } from '../graphql';
import { useQuery } from '../lib/query';
import { useTitle } from '../lib/title';
import { DEPLOYMENT_ROW, DeploymentsTable, useFollowDeployments } from './deployments-common';

const DEPLOYMENTS = graphql(
  `
    query Deployments {
      deployments(first: 100) { ...DeploymentRow }
    }
  `,
  [DEPLOYMENT_ROW],
);

const LIST_LIMIT = 100;

export function DeploymentsPage() {
  useTitle('Deployments');
  const [result, reexecute] = useQuery({ query: DEPLOYMENTS, requestPolicy: 'cache-and-network' });
  const live = useFollowDeployments(reexecute);
  return (
    <section aria-labelledby="deployments-title">
      <div class="page-header">
        <h1 id="deployments-title">Deployments</h1>
      </div>
      <LiveDownBanner live={live} />
      <QueryState
        data={result.data?.deployments}
        error={result.error}
        errorTitle="Deployments could not be loaded"
        retry={refetch(reexecute)}
        loading="Loading deployments…"
        empty={
          <EmptyState title="No deployments yet">
            <p>
              Your teams’ deployments appear here. Create one with <code>npx atelier deploy create NAME ns/model@alias</code> (docs/deployments.md).
            </p>
          </EmptyState>
        }
      >
        {(deployments) => (
          <>
            <DeploymentsTable label="Deployments" rows={deployments} />
            {deployments.length === LIST_LIMIT && <p class="muted">The first {LIST_LIMIT} by name.</p>}
          </>
        )}
      </QueryState>
    </section>
  );
}

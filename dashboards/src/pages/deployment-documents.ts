// A deployment's page's GraphQL documents: the deployment with its revisions, rollout, policy, fallback, events and
// the caller's `viewerCan`; the same fields live through `deploymentChanged`; and the four actions people take.
import { graphql, type ResultOf } from '../graphql';

export const DEPLOYMENT_DETAIL = graphql(`
  fragment DeploymentDetail on Deployment {
    id name model domain deployer ready message failedOver deleting url createdAt updatedAt
    createdBy { name }
    registeredModel { fullName }
    traffic { revision percent }
    revisions { number state health restarts message baseline createdAt modelVersion { version } serving { at requests errorRate latencyP50Ms latencyP99Ms } }
    rollout { revision from step percent state reason startedAt stepStartedAt nextDecisionAt steps { percent dwellSeconds } gates { metric rule step status value baseline message measuredAt } }
    rolloutPolicy { readyTimeoutSeconds steps { percent dwellSeconds } gates { metric rule { kind aggregate above below maxDrop baseline } } }
    fallback { kind revision modelVersion { version } }
    events(limit: 100) { id kind revision reason details createdAt actor { name } }
    viewerCan { manage failover }
  }
`);

export type DeploymentData = ResultOf<typeof DEPLOYMENT_DETAIL>;

export const DEPLOYMENT = graphql(`query DeploymentPage($name: String!) { deployment(name: $name) { ...DeploymentDetail } }`, [DEPLOYMENT_DETAIL]);

export const DEPLOYMENT_CHANGED = graphql(`subscription DeploymentLive($id: String!) { deploymentChanged(id: $id) { ...DeploymentDetail } }`, [
  DEPLOYMENT_DETAIL,
]);

export const PROMOTE = graphql(
  `mutation PromoteDeployment($id: String!, $reason: String) { promoteDeployment(id: $id, reason: $reason) { ...DeploymentDetail } }`,
  [DEPLOYMENT_DETAIL],
);
export const ROLLBACK = graphql(
  `mutation RollbackDeployment($id: String!, $reason: String) { rollbackDeployment(id: $id, reason: $reason) { ...DeploymentDetail } }`,
  [DEPLOYMENT_DETAIL],
);
export const FAILOVER = graphql(
  `mutation FailoverDeployment($id: String!, $reason: String!) { failoverDeployment(id: $id, reason: $reason) { ...DeploymentDetail } }`,
  [DEPLOYMENT_DETAIL],
);
export const RESTORE = graphql(
  `mutation RestoreDeployment($id: String!, $reason: String) { restoreDeployment(id: $id, reason: $reason) { ...DeploymentDetail } }`,
  [DEPLOYMENT_DETAIL],
);

// What every resolver receives: the caller's identity and CASL ability, and the services. Per-request loaders
// live in the dataloader plugin's cache on this object (see the loadable types and loaders.ts).
import type { ObjectStore } from '../server/artifacts/store';
import type { AppAbility, Grants, TokenScopes } from '../server/auth/ability';
import type { TaskCache } from '../server/cache/store';
import type { HotClusterService } from '../server/compute/hot-clusters';
import type { Config } from '../server/config';
import type { Db } from '../server/db/client';
import type { Identity } from '../server/db/tables/identities';
import type { Run } from '../server/db/tables/runs';
import type { DeploymentWatch } from '../server/deployments/live';
import type { DeploymentService } from '../server/deployments/service';
import type { RunFeed } from '../server/events/feed';
import type { LiveChanges } from '../server/events/live-changes';
import type { LiveSubscriptions } from '../server/events/live-subscriptions';
import type { Orchestrator } from '../server/orchestrator/orchestrator';
import type { RegistryFeed } from '../server/registry/live';
import type { TriggerDispatcher } from '../server/triggers/dispatcher';
import type { WebhookWorker } from '../server/webhooks/worker';
import type { PlanDefaults } from '../server/workflows/plan';

export interface Services {
  db: Db;
  store: ObjectStore;
  feed: RunFeed;
  /** The live subscriptions' slots, per token and in all (their limits, and counts for tests and operators). */
  subscriptions: LiveSubscriptions;
  orchestrator: Orchestrator;
  config: Config;
  planDefaults: PlanDefaults;
  cache: TaskCache;
  /** Whether a run started by an identity may reuse a result computed by a source run. */
  mayReuse: (identity: Identity | null, source: Run, grants?: Grants, scopes?: TokenScopes) => boolean;
  hotClusters: HotClusterService;
  /** Posts webhook deliveries: kick it after committing a transaction that called emitWebhookEvent. */
  webhooks: Pick<WebhookWorker, 'kick' | 'drain'>;
  /** Registry events, live (`registryEvents`): kick it after committing a registry change. */
  registryFeed: RegistryFeed;
  /** The trigger dispatcher: kick it after committing a change that recorded a signal (server/signals/). */
  triggers: Pick<TriggerDispatcher, 'kick' | 'drain'>;
  /** Deployments: the reconciler and the changes people make (server/deployments/service.ts). */
  deployments: DeploymentService;
  /** Change signals of live pages' state (deployments, executor hosts): `listen` to a topic, `touch` its keys. */
  liveChanges: LiveChanges;
  /** Deployments created, changed and deleted, read once per replica for `deploymentsChanged` and `deploymentChanged`. */
  deploymentWatch: DeploymentWatch;
}

export interface Context {
  identity: Identity;
  /** The bearer token the request came with: live subscriptions check it again while they run. */
  token: string;
  /** The token's scopes (null: unscoped): the ability is narrowed to them. */
  scopes: string[] | null;
  ability: AppAbility;
  /** What the identity's teams grant; the ability is built from it. */
  grants: Grants;
  services: Services;
  /** SSE's `Last-Event-ID` request header (an EventSource reconnecting sends it): where `runEvents` resumes. */
  lastEventId?: string | null;
}

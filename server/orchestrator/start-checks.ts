// What a run acts for and the checks made on it before anything is planned: whom it acts for (its starter as the
// token allows, or a schedule's owners), the hot clusters it may use, and the domain it may run its workflow in.
import { AuditedDenial } from '../audit/audit';
import { defineAbilityFor, type TokenScopes } from '../auth/ability';
import { grantsOf } from '../auth/grants';
import { actorOfIdentity, assertMayUseClusters, type RunActor } from '../compute/cluster-access';
import type { Tx } from '../db/client';
import type { HotCluster } from '../db/tables/executors';
import type { Identity } from '../db/tables/identities';
import type { Task } from '../db/tables/runs';
import type { Experiment } from '../db/tables/tracking';
import type { Workflow, WorkflowVersion } from '../db/tables/workflows';
import { mayStartWorkflowIn, WORKFLOW_DOMAIN_RULE, workflowDomainRefusal } from '../governance/grants';
import { atLeastAsGuarded, type Domain, type ModelInput, type Trigger } from '../vocabulary';
import { specDomainOf } from '../workflows/queries';
import { starterlessActor } from './run-actor';
import type { SentAhead } from './start-guesses';

export interface CreateRun {
  /** Its id, when the caller must name it before it exists (a nested run's parent task links to it first). */
  id?: string;
  workflow: Workflow;
  version: WorkflowVersion;
  parameters: Record<string, unknown>;
  trigger: Trigger;
  identity: Identity | null;
  /** The scopes of the token `identity` started it with (a nested run: its parent's); null or absent: unscoped. */
  scopes?: TokenScopes;
  sourceRunId?: string;
  idempotencyKey?: string;
  pinned?: Map<string, string>;
  overrides?: Map<string, string>;
  /** Nodes whose result is taken from an earlier run's task instead of executing. */
  reuse?: Map<string, Task>;
  /** For a nested workflow's run: the task that started it. */
  parent?: Pick<Task, 'id' | 'runId'>;
  domain: Domain;
  refreshCache?: boolean;
  cacheNamespace?: string | null;
  stack?: string[];
  hotCluster?: string;
  /** Whom a run without a starter acts for (a schedule's owners); default: its starter, or what its ancestors act for. */
  actingFor?: RunActor | null;
  /** The experiment it belongs to; default: the workflow's own. */
  experimentId?: string;
  /** The workflow's own experiment as startRun's read of the workflow found it (null: none yet); absent: read it. */
  workflowExperiment?: Experiment | null;
  /** Its priority in saturated pools (checked by the caller); a nested run takes its parent's. */
  priority?: number;
  /** The run's time limit in seconds (checked by the caller, runDeadline.ts); default: the spec's `timeoutSeconds`. */
  timeoutSeconds?: number;
  /** A nested run's parent's deadline: the child's is never later. */
  parentDeadlineAt?: Date | null;
  /** A source run's model inputs by node (reruns and clones): kept, never resolved again. */
  pinnedModels?: Map<string, Record<string, ModelInput>>;
  /** Reads startRun sent with the workflow's (start-guesses.ts): used where they are the ones needed. */
  ahead?: SentAhead;
}

/**
 * Whom the run acts for (server/orchestrator/run-actor.ts): its starter with its token's scopes; with no starter, whom
 * it was started for (a schedule's owners), or what its topmost ancestor acts for.
 */
export async function actorOf(tx: Tx, input: CreateRun): Promise<RunActor | null> {
  if (input.identity) return actorOfIdentity(tx, input.identity, input.scopes ?? null);
  if (input.actingFor !== undefined) return input.actingFor;
  return input.parent ? starterlessActor(tx, input.parent.runId) : null;
}

/** Refuses (audited) a run whose tasks, nested runs' included, would use a hot cluster of an owner it does not act for. */
export async function assertMayUseHotClusters(
  tx: Tx,
  input: CreateRun,
  clusters: Map<string, HotCluster>,
  actor: () => Promise<RunActor | null>,
): Promise<void> {
  if (!clusters.size) return;
  const acting = await actor();
  if (acting) await assertMayUseClusters(tx, acting, clusters.values(), `workflow:${input.workflow.name}`);
}

/**
 * Every run (started, cloned, rerun, nested, scheduled) of a workflow in a domain less guarded than the workflow's
 * would publish the workflow's spec (its parameter defaults) there, in the run's parameters and outputs: only its
 * starter's reading the workflow's domain allows it. Refused (audited) before anything is planned.
 */
export async function assertMayRunWorkflowIn(tx: Tx, { workflow: current, version, domain, identity, scopes, parent }: CreateRun): Promise<void> {
  // An older version's spec stays the data of the domain it was published in (workflows/queries.ts specDomainOf).
  const workflow = { ...current, domain: specDomainOf(current, version) };
  if (atLeastAsGuarded(domain, workflow.domain)) return;
  if (identity && mayStartWorkflowIn(defineAbilityFor(identity, await grantsOf(tx, identity), scopes ?? null), workflow.domain, domain)) return;
  throw new AuditedDenial(
    {
      identity,
      action: 'run.start',
      decision: 'deny',
      subject: `workflow:${workflow.name}`,
      rule: WORKFLOW_DOMAIN_RULE,
      details: { workflowDomain: workflow.domain, domain, ...(parent ? { parentRun: parent.runId } : {}) },
    },
    workflowDomainRefusal(workflow, domain),
  );
}

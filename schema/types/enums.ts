// Every GraphQL enum, in one file: type files import them from here (and so never from each other for an enum).
import { cacheGroupings } from '../../server/cache/stats';
import { costGroupings } from '../../server/runs/costs';
import {
  type CatchUpPolicy,
  callerTriggers,
  catchUpPolicies,
  domains,
  fireOutcomes,
  type hotClusterStates,
  levels,
  type OverlapPolicy,
  overlapPolicies,
  runStatuses,
  taskStatuses,
  teamRoles,
  triggers,
} from '../../server/vocabulary';
import { builder } from '../builder';

// --- runs ----------------------------------------------------------------------------------------------------

export const RunStatusEnum = builder.enumType('RunStatus', { values: runStatuses });
export const TaskStatusEnum = builder.enumType('TaskStatus', { values: taskStatuses });
export const TriggerEnum = builder.enumType('RunTrigger', { values: triggers });
export const StartTriggerEnum = builder.enumType('StartTrigger', {
  values: callerTriggers,
  description: 'How a caller started a run, as the run records it. SCHEDULE, CLONE, RERUN and PARENT are set by the platform only.',
});
export const DomainEnum = builder.enumType('Domain', { values: domains, description: 'The data boundary a workflow, run or dataset belongs to.' });
export const RerunFromEnum = builder.enumType('RerunFrom', { values: ['FAILED', 'ALL', 'NODES'] as const });

// --- identities and teams ------------------------------------------------------------------------------------

export const RoleEnum = builder.enumType('Role', { values: ['admin', 'member', 'viewer'] as const });
export const TeamRoleEnum = builder.enumType('TeamRole', {
  values: teamRoles,
  description: 'viewer: reads; member: publishes into the team’s namespaces and moves their tags; maintainer and admin: also manage members and namespaces.',
});

// --- governance and cache ------------------------------------------------------------------------------------

export const LevelEnum = builder.enumType('ClassificationLevel', { values: levels, description: 'PUBLIC < INTERNAL < CONFIDENTIAL < RESTRICTED.' });
export const CacheGroupingEnum = builder.enumType('CacheGrouping', { values: cacheGroupings });
export const CostGroupingEnum = builder.enumType('CostGrouping', { values: costGroupings });

// --- executors -----------------------------------------------------------------------------------------------

export const HotClusterStateEnum = builder.enumType('HotClusterState', {
  values: {
    STARTING: { description: 'Asked for; no live host holds it warm yet (see `message`).' },
    READY: { description: 'A host of its pool holds it warm: tasks asking for it skip provisioning.' },
    ENDED: { description: 'Ended by a user or after its idle timeout.' },
  } satisfies Record<(typeof hotClusterStates)[number], unknown>,
});
export const PoolHealthEnum = builder.enumType('ExecutorPoolHealth', {
  values: {
    HEALTHY: { description: 'At least one live host serves the pool.' },
    STALE: { description: 'Hosts served it, but none has sent a heartbeat recently: its tasks wait.' },
    NO_HOSTS: { description: 'Tasks are queued for it, but no host has ever announced it.' },
  },
});

// --- schedules -----------------------------------------------------------------------------------------------

// Records keyed by the table's policy lists: a policy added there does not compile until it is described here.
const catchUpDescriptions: Record<CatchUpPolicy, string> = {
  SKIP: 'Run none of them.',
  LATEST: 'Run the latest once.',
  ALL: 'Run them, oldest first, up to catchUpLimit (the latest ones).',
};
const overlapDescriptions: Record<OverlapPolicy, string> = {
  ALLOW: 'Start another run.',
  SKIP: 'Start none; the fire is recorded SKIPPED_OVERLAP.',
  CANCEL_PREVIOUS: 'Cancel the running one, then start.',
};
const described = <T extends string>(list: readonly T[], descriptions: Record<T, string>) =>
  Object.fromEntries(list.map((v) => [v, { description: descriptions[v] }])) as Record<T, { description: string }>;

export const CatchUpEnum = builder.enumType('ScheduleCatchUp', {
  description: 'What happens to fire times missed while the control plane was down (or the schedule paused).',
  values: described(catchUpPolicies, catchUpDescriptions),
});
export const OverlapEnum = builder.enumType('ScheduleOverlap', {
  description: 'What happens when a fire time comes while a run this schedule started is still queued or running.',
  values: described(overlapPolicies, overlapDescriptions),
});
export const FireOutcomeEnum = builder.enumType('ScheduleFireOutcome', { values: fireOutcomes });

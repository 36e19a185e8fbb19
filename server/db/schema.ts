// Every table, for drizzle's relational queries and drizzle-kit.

export * from './tables/cache';
export * from './tables/dataset-health';
export * from './tables/deployments';
export * from './tables/executors';
export * from './tables/governance';
export * from './tables/identities';
export * from './tables/installation';
export * from './tables/logged-models';
export * from './tables/modules';
export * from './tables/monitoring';
export * from './tables/object-stores';
export * from './tables/outbox';
export * from './tables/registry';
export * from './tables/run-events';
export * from './tables/runs';
export * from './tables/schedules';
export * from './tables/task-events';
export * from './tables/task-executions';
export * from './tables/task-figures';
export * from './tables/task-log-bytes';
export * from './tables/teams';
export * from './tables/tokens';
export * from './tables/tracking';
export * from './tables/triggers';
export * from './tables/webhooks';
export * from './tables/workflows';

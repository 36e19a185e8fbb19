// Every table, for drizzle's relational queries and drizzle-kit.
export * from './tables/identities';
export * from './tables/tokens';
export * from './tables/modules';
export * from './tables/workflows';
export * from './tables/runs';
export * from './tables/task-events';
export * from './tables/outbox';
export * from './tables/schedules';
export * from './tables/executors';

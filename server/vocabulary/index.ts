// The shared vocabulary of Atelier: plain constants and types that every layer (tables, orchestrator, schema,
// CLI) speaks. A leaf: nothing here imports anything of the project outside this folder.
export * from './batch';
export * from './cache';
export * from './data-access';
export * from './domains';
export * from './executors';
export * from './identity';
export * from './labels';
export * from './manifest';
export * from './registry';
export * from './runs';
export * from './schedules';
export * from './serving';
export * from './spec';
export * from './triggers';
export * from './version-number';

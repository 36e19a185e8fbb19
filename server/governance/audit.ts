// Moved to server/audit/audit.ts; this re-export lasts until the schema and orchestrator import it from there.
export * from '../audit/audit';

-- The two large values S1 writes are compressed with lz4 rather than pglz, Postgres' default: a row of run events
-- (up to 64 feed events, ~15 KB of JSON) and an outbox row's message (a bundle of task messages, ~40 KB). Both go over
-- the ~2 KB at which Postgres compresses a row's values; pglz was ~6% of Postgres' CPU in S1 (perf), ~5 µs a task.
-- lz4 compresses these to about the same size at a fraction of the CPU (docs/performance.md, "S1: Postgres' time a task
-- (session 34)"). Only values written from now on use it; older ones stay readable as they are. A server built without
-- lz4 (the embedded PGlite) keeps pglz: the setting is a storage detail, nothing reads it.
DO $$
BEGIN
  ALTER TABLE run_events ALTER COLUMN event SET COMPRESSION lz4;
  ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END
$$;

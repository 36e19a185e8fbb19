CREATE TABLE "metric_blocks" (
	"task_id" uuid NOT NULL,
	"name" text NOT NULL,
	"attempt" integer NOT NULL,
	"block" integer NOT NULL,
	"run_id" uuid NOT NULL,
	"n" integer NOT NULL,
	"seq_lo" bigint NOT NULL,
	"seq_hi" bigint NOT NULL,
	"seqs" bigint[] NOT NULL,
	"steps" bigint[] NOT NULL,
	"vals" double precision[] NOT NULL,
	"ats" timestamp with time zone[] NOT NULL,
	CONSTRAINT "metric_blocks_task_id_name_attempt_block_pk" PRIMARY KEY("task_id","name","attempt","block")
);
--> statement-breakpoint
CREATE INDEX "metric_blocks_seq_hi_idx" ON "metric_blocks" USING btree ("task_id","name","attempt","seq_hi");--> statement-breakpoint
CREATE INDEX "metric_blocks_attempt_idx" ON "metric_blocks" USING btree ("task_id","attempt","seq_hi");--> statement-breakpoint
-- Move every stored point into blocks: per series (task, metric, attempt) in seq order, 1,024 points a block
-- (METRIC_BLOCK_POINTS in server/tracking/metrics.ts). Summaries and rollups are per series already and stay as they are.
INSERT INTO "metric_blocks" ("task_id", "name", "attempt", "block", "run_id", "n", "seq_lo", "seq_hi", "seqs", "steps", "vals", "ats")
SELECT "task_id", "name", "attempt", "block", min("run_id"::text)::uuid, count(*), min("seq"), max("seq"),
  array_agg("seq" ORDER BY "seq"), array_agg("step" ORDER BY "seq"), array_agg("value" ORDER BY "seq"), array_agg("at" ORDER BY "seq")
FROM (
  SELECT p.*, ((row_number() OVER (PARTITION BY "task_id", "name", "attempt" ORDER BY "seq")) - 1) / 1024 AS "block" FROM "metric_points" p
) numbered
GROUP BY "task_id", "name", "attempt", "block";
--> statement-breakpoint
DROP TABLE "metric_points" CASCADE;
--> statement-breakpoint
-- The points one row each, for reads that want points (server/db/tables/tracking.ts, metricPoints).
CREATE VIEW "metric_points" AS
SELECT b."task_id", b."run_id", b."attempt", u."seq", b."name", u."step", u."value", u."at"
FROM "metric_blocks" b CROSS JOIN LATERAL unnest(b."seqs", b."steps", b."vals", b."ats") AS u("seq", "step", "value", "at");

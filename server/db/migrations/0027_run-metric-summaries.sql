CREATE TABLE "run_metric_summaries" (
	"run_id" uuid NOT NULL,
	"name" text NOT NULL,
	"last" double precision,
	"last_at" timestamp with time zone NOT NULL,
	"last_task" uuid NOT NULL,
	"min" double precision,
	"max" double precision,
	CONSTRAINT "run_metric_summaries_run_id_name_pk" PRIMARY KEY("run_id","name")
);
--> statement-breakpoint
CREATE INDEX "run_metric_summaries_last_idx" ON "run_metric_summaries" USING btree ("name","last");--> statement-breakpoint
CREATE INDEX "run_metric_summaries_min_idx" ON "run_metric_summaries" USING btree ("name","min");--> statement-breakpoint
CREATE INDEX "run_metric_summaries_max_idx" ON "run_metric_summaries" USING btree ("name","max");--> statement-breakpoint
INSERT INTO "run_metric_summaries" ("run_id", "name", "last", "last_at", "last_task", "min", "max")
SELECT DISTINCT ON ("run_id", "name") "run_id", "name", nullif("last", 'NaN'::float8), "last_at", "task_id",
  min("min") OVER w, max("max") OVER w
FROM "metric_summaries"
WINDOW w AS (PARTITION BY "run_id", "name")
ORDER BY "run_id", "name", "last_at" DESC, "task_id" DESC;

CREATE TABLE "metric_rollups" (
	"task_id" uuid NOT NULL,
	"name" text NOT NULL,
	"attempt" integer NOT NULL,
	"axis" text NOT NULL,
	"shift" smallint NOT NULL,
	"bucket" bigint NOT NULL,
	"n" bigint NOT NULL,
	"lo" double precision[],
	"hi" double precision[],
	"first" double precision[] NOT NULL,
	"last" double precision[] NOT NULL,
	CONSTRAINT "metric_rollups_task_id_name_attempt_axis_shift_bucket_pk" PRIMARY KEY("task_id","name","attempt","axis","shift","bucket")
);
--> statement-breakpoint
-- Backfill: the same folding storeMetricPoints does per batch (server/tracking/rollups.ts), over every stored point.
WITH "roll_fine" AS (
  SELECT p."task_id", p."name", p."attempt", a."axis", a."shift", k."key" >> a."shift" AS "bucket", count(*) AS "n",
    min(array[p."value", p."seq"::float8, p."step"::float8]) FILTER (WHERE p."value" <> 'NaN'::float8) AS "lo",
    max(array[p."value", p."seq"::float8, p."step"::float8]) FILTER (WHERE p."value" <> 'NaN'::float8) AS "hi",
    min(array[k."key"::float8, p."seq"::float8, p."step"::float8, p."value"]) AS "first",
    max(array[k."key"::float8, p."seq"::float8, p."step"::float8, p."value"]) AS "last"
  FROM "metric_points" p
    CROSS JOIN (VALUES ('seq', 4), ('step', 3)) AS a("axis", "shift")
    CROSS JOIN LATERAL (SELECT CASE WHEN a."axis" = 'seq' THEN p."seq" ELSE p."step" END AS "key") k
  GROUP BY 1, 2, 3, 4, 5, 6
)
INSERT INTO "metric_rollups" ("task_id", "name", "attempt", "axis", "shift", "bucket", "n", "lo", "hi", "first", "last")
SELECT f."task_id", f."name", f."attempt", f."axis", l."shift", f."bucket" >> (l."shift" - l."fine"), sum(f."n"), min(f."lo"), max(f."hi"), min(f."first"), max(f."last")
FROM "roll_fine" f
  JOIN (VALUES ('seq', 4, 4), ('seq', 8, 4), ('seq', 12, 4), ('step', 3, 3), ('step', 6, 3), ('step', 9, 3), ('step', 12, 3), ('step', 15, 3)) AS l("axis", "shift", "fine") ON l."axis" = f."axis"
GROUP BY 1, 2, 3, 4, 5, 6;

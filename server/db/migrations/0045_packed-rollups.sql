CREATE TABLE "metric_rollup_pages" (
	"task_id" uuid NOT NULL,
	"name" text NOT NULL,
	"attempt" integer NOT NULL,
	"axis" text NOT NULL,
	"shift" smallint NOT NULL,
	"page" bigint NOT NULL,
	"total" bigint NOT NULL,
	"buckets" bigint[] NOT NULL,
	"ns" bigint[] NOT NULL,
	"lo_value" double precision[] NOT NULL,
	"lo_seq" double precision[] NOT NULL,
	"lo_step" double precision[] NOT NULL,
	"hi_value" double precision[] NOT NULL,
	"hi_seq" double precision[] NOT NULL,
	"hi_step" double precision[] NOT NULL,
	"first_key" double precision[] NOT NULL,
	"first_seq" double precision[] NOT NULL,
	"first_step" double precision[] NOT NULL,
	"first_value" double precision[] NOT NULL,
	"last_key" double precision[] NOT NULL,
	"last_seq" double precision[] NOT NULL,
	"last_step" double precision[] NOT NULL,
	"last_value" double precision[] NOT NULL,
	CONSTRAINT "metric_rollup_pages_task_id_name_attempt_axis_shift_page_pk" PRIMARY KEY("task_id","name","attempt","axis","shift","page")
);
--> statement-breakpoint
-- A full page (32 buckets, 16 arrays: ~4.5 KB) stays in the row, uncompressed: TOAST would move each array out of line
-- (an index entry per column written, a lookup per column read).
ALTER TABLE "metric_rollup_pages" SET (toast_tuple_target = 8160);--> statement-breakpoint
-- Move the rollups into pages of 32 buckets (ROLLUP_PAGE_SHIFT 5 in server/tracking/rollups.ts), each column an array
-- in bucket order; a bucket with no number keeps nulls in its lo and hi columns.
INSERT INTO "metric_rollup_pages" ("task_id", "name", "attempt", "axis", "shift", "page", "total", "buckets", "ns", "lo_value", "lo_seq", "lo_step", "hi_value", "hi_seq", "hi_step", "first_key", "first_seq", "first_step", "first_value", "last_key", "last_seq", "last_step", "last_value")
SELECT "task_id", "name", "attempt", "axis", "shift", "bucket" >> 5, sum("n"), array_agg("bucket" ORDER BY "bucket"), array_agg("n" ORDER BY "bucket"),
  array_agg("lo"[1] ORDER BY "bucket"),
  array_agg("lo"[2] ORDER BY "bucket"),
  array_agg("lo"[3] ORDER BY "bucket"),
  array_agg("hi"[1] ORDER BY "bucket"),
  array_agg("hi"[2] ORDER BY "bucket"),
  array_agg("hi"[3] ORDER BY "bucket"),
  array_agg("first"[1] ORDER BY "bucket"),
  array_agg("first"[2] ORDER BY "bucket"),
  array_agg("first"[3] ORDER BY "bucket"),
  array_agg("first"[4] ORDER BY "bucket"),
  array_agg("last"[1] ORDER BY "bucket"),
  array_agg("last"[2] ORDER BY "bucket"),
  array_agg("last"[3] ORDER BY "bucket"),
  array_agg("last"[4] ORDER BY "bucket")
FROM "metric_rollups"
GROUP BY 1, 2, 3, 4, 5, 6;--> statement-breakpoint
DROP TABLE "metric_rollups" CASCADE;
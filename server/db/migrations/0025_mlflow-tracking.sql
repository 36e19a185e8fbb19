CREATE TABLE "run_artifacts" (
	"task_id" uuid NOT NULL,
	"run_id" uuid NOT NULL,
	"path" text NOT NULL,
	"digest" text NOT NULL,
	"size" bigint NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "run_artifacts_task_id_path_pk" PRIMARY KEY("task_id","path")
);
--> statement-breakpoint
ALTER TABLE "tokens" ADD COLUMN "task_id" uuid;--> statement-breakpoint
ALTER TABLE "tokens" ADD COLUMN "task_attempt" integer;--> statement-breakpoint
CREATE INDEX "run_artifacts_run_idx" ON "run_artifacts" USING btree ("run_id");
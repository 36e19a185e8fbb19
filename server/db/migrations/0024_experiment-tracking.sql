CREATE TABLE "experiments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"workflow_id" uuid,
	"team_id" uuid,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "experiments_name_key" UNIQUE("name"),
	CONSTRAINT "experiments_workflow_key" UNIQUE("workflow_id")
);
--> statement-breakpoint
CREATE TABLE "logged_params" (
	"task_id" uuid NOT NULL,
	"run_id" uuid NOT NULL,
	"key" text NOT NULL,
	"value" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "logged_params_task_id_key_pk" PRIMARY KEY("task_id","key")
);
--> statement-breakpoint
CREATE TABLE "metric_points" (
	"task_id" uuid NOT NULL,
	"run_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"seq" bigint NOT NULL,
	"name" text NOT NULL,
	"step" bigint NOT NULL,
	"value" double precision NOT NULL,
	"at" timestamp with time zone NOT NULL,
	CONSTRAINT "metric_points_task_id_attempt_seq_pk" PRIMARY KEY("task_id","attempt","seq")
);
--> statement-breakpoint
CREATE TABLE "metric_summaries" (
	"task_id" uuid NOT NULL,
	"run_id" uuid NOT NULL,
	"name" text NOT NULL,
	"count" bigint NOT NULL,
	"last" double precision NOT NULL,
	"last_step" bigint NOT NULL,
	"last_at" timestamp with time zone NOT NULL,
	"last_attempt" integer NOT NULL,
	"last_seq" bigint NOT NULL,
	"min" double precision,
	"min_step" bigint,
	"max" double precision,
	"max_step" bigint,
	CONSTRAINT "metric_summaries_task_id_name_pk" PRIMARY KEY("task_id","name")
);
--> statement-breakpoint
CREATE TABLE "run_tags" (
	"run_id" uuid NOT NULL,
	"key" text NOT NULL,
	"value" text NOT NULL,
	"set_by" uuid,
	"set_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "run_tags_run_id_key_pk" PRIMARY KEY("run_id","key")
);
--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "workflow_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "workflow_version_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "experiment_id" uuid;--> statement-breakpoint
-- Every run belongs to an experiment: existing runs go to their workflow's own, named after it.
INSERT INTO "experiments" ("name", "workflow_id", "team_id", "created_by", "created_at")
  SELECT w."name", w."id", w."team_id", w."created_by", w."created_at" FROM "workflows" w
  WHERE EXISTS (SELECT 1 FROM "runs" r WHERE r."workflow_id" = w."id");--> statement-breakpoint
UPDATE "runs" r SET "experiment_id" = e."id" FROM "experiments" e WHERE e."workflow_id" = r."workflow_id";--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "experiment_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "name" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "note" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "note_by" uuid;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "note_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "experiments" ADD CONSTRAINT "experiments_workflow_id_workflows_id_fk" FOREIGN KEY ("workflow_id") REFERENCES "public"."workflows"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiments" ADD CONSTRAINT "experiments_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "experiments" ADD CONSTRAINT "experiments_created_by_identities_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_tags" ADD CONSTRAINT "run_tags_set_by_identities_id_fk" FOREIGN KEY ("set_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "logged_params_run_idx" ON "logged_params" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "logged_params_key_value_idx" ON "logged_params" USING btree ("key","value");--> statement-breakpoint
CREATE INDEX "metric_points_series_idx" ON "metric_points" USING btree ("task_id","name","attempt","seq");--> statement-breakpoint
CREATE INDEX "metric_summaries_run_idx" ON "metric_summaries" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "metric_summaries_name_last_idx" ON "metric_summaries" USING btree ("name","last");--> statement-breakpoint
CREATE INDEX "run_tags_key_value_idx" ON "run_tags" USING btree ("key","value");--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_note_by_identities_id_fk" FOREIGN KEY ("note_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "runs_experiment_idx" ON "runs" USING btree ("experiment_id","created_at" DESC NULLS LAST);
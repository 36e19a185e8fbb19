ALTER TABLE "tasks" ALTER COLUMN "module_ref" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ALTER COLUMN "module_version_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "parent_run_id" uuid;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "parent_task_id" uuid;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "kind" text DEFAULT 'module' NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "workflow_ref" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "child_workflow_version_id" uuid;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "child_run_id" uuid;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "map_over" jsonb;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "map_as" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "map_parent" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "map_index" integer;--> statement-breakpoint
CREATE INDEX "runs_parent_idx" ON "runs" USING btree ("parent_run_id");
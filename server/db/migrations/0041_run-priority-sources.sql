ALTER TABLE "schedules" ADD COLUMN "priority" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "workflow_triggers" ADD COLUMN "priority" integer DEFAULT 0 NOT NULL;
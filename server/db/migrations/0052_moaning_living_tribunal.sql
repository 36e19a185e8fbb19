ALTER TABLE "monitors" ADD COLUMN "scopes" text[];--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "scopes" text[];--> statement-breakpoint
ALTER TABLE "schedules" ADD COLUMN "scopes" text[];--> statement-breakpoint
ALTER TABLE "workflow_triggers" ADD COLUMN "scopes" text[];
ALTER TABLE "tasks" ADD COLUMN "upstream_done" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "upstream_succeeded" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "upstream_failed" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "tasks_run_open_idx" ON "tasks" USING btree ("run_id") WHERE status in ('PENDING', 'READY', 'QUEUED', 'RUNNING', 'RETRYING');
ALTER TABLE "runs" ADD COLUMN "idempotency_key" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "admitted" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "max_parallel_tasks" integer;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "trigger_rule" text DEFAULT 'all_succeeded' NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "retry_delay_ms" integer DEFAULT 1000 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "retry_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "system_failures" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "reused_from_task_id" uuid;--> statement-breakpoint
CREATE UNIQUE INDEX "runs_idempotency_key" ON "runs" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "tasks_open_idx" ON "tasks" USING btree ("status") WHERE status in ('READY', 'RUNNING', 'RETRYING');--> statement-breakpoint
CREATE INDEX "tasks_pool_active_idx" ON "tasks" USING btree ("pool") WHERE status in ('QUEUED', 'RUNNING');
ALTER TABLE "dataset_versions" ADD COLUMN "partitions" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "priority" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "models" jsonb;--> statement-breakpoint
CREATE INDEX "tasks_pool_ready_idx" ON "tasks" USING btree ("pool","queued_at") WHERE status = 'READY';
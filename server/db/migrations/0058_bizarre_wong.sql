ALTER TABLE "runs" ADD COLUMN "timeout_ms" integer;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "deadline_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "runs_deadline_idx" ON "runs" USING btree ("deadline_at") WHERE deadline_at is not null and status in ('QUEUED', 'RUNNING');
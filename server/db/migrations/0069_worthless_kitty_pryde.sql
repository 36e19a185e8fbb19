DROP INDEX "tasks_run_waiting_idx";--> statement-breakpoint
CREATE INDEX "tasks_run_waiting_idx" ON "tasks" USING btree ("run_id","status") WHERE status in ('PENDING', 'READY');
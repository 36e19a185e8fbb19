DROP INDEX "tasks_run_idx";--> statement-breakpoint
DROP INDEX "task_events_task_idx";--> statement-breakpoint
CREATE INDEX "tasks_run_waiting_idx" ON "tasks" USING btree ("run_id") WHERE status in ('PENDING', 'READY');
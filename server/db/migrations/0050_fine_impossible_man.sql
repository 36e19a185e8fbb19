DROP INDEX "cache_entries_module_idx";--> statement-breakpoint
DROP INDEX "executor_hosts_seen_idx";--> statement-breakpoint
DROP INDEX "audit_events_at_idx";--> statement-breakpoint
DROP INDEX "audit_events_subject_idx";--> statement-breakpoint
DROP INDEX "object_store_replicas_seen_idx";--> statement-breakpoint
DROP INDEX "model_alias_events_alias_idx";--> statement-breakpoint
DROP INDEX "runs_created_idx";--> statement-breakpoint
DROP INDEX "runs_workflow_idx";--> statement-breakpoint
DROP INDEX "runs_experiment_idx";--> statement-breakpoint
DROP INDEX "trigger_firings_recent_idx";--> statement-breakpoint
CREATE INDEX "cache_entries_module_idx" ON "cache_entries" USING btree ("module","scope","created_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "executor_hosts_seen_idx" ON "executor_hosts" USING btree ("last_seen_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "audit_events" USING btree ("created_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "audit_events_subject_idx" ON "audit_events" USING btree ("subject","created_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "object_store_replicas_seen_idx" ON "object_store_replicas" USING btree ("last_seen_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "model_alias_events_alias_idx" ON "model_alias_events" USING btree ("model_id","alias","created_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "runs_created_idx" ON "runs" USING btree ("created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "runs_workflow_idx" ON "runs" USING btree ("workflow_id","created_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "runs_experiment_idx" ON "runs" USING btree ("experiment_id","created_at" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "trigger_firings_recent_idx" ON "trigger_firings" USING btree ("trigger_id","created_at" DESC NULLS FIRST);
ALTER TABLE "object_store_replicas" ADD COLUMN "admin_token_hash" text;--> statement-breakpoint
ALTER TABLE "task_log_bytes" ADD COLUMN "lines" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "task_log_bytes" ADD COLUMN "dropped_lines" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "task_log_bytes" ADD COLUMN "counted" "int8multirange" DEFAULT '{}' NOT NULL;
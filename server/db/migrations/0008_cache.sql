CREATE TABLE "cache_entries" (
	"key" text PRIMARY KEY NOT NULL,
	"components" jsonb NOT NULL,
	"scope" text NOT NULL,
	"module" text NOT NULL,
	"module_version_id" uuid NOT NULL,
	"outputs" jsonb NOT NULL,
	"object_digests" text[] DEFAULT '{}'::text[] NOT NULL,
	"size_bytes" bigint NOT NULL,
	"source_task_id" uuid NOT NULL,
	"source_run_id" uuid NOT NULL,
	"duration_ms" bigint NOT NULL,
	"hits" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "cache_reservations" (
	"key" text PRIMARY KEY NOT NULL,
	"task_id" uuid NOT NULL,
	"run_id" uuid NOT NULL,
	"components" jsonb NOT NULL,
	"module" text NOT NULL,
	"module_version_id" uuid NOT NULL,
	"ttl_seconds" integer,
	"heartbeat_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "domain" text DEFAULT 'experimentation' NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "refresh_cache" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "cache_key" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "cache_source_task_id" uuid;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "cache_source_run_id" uuid;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "cache_saved_ms" bigint;--> statement-breakpoint
ALTER TABLE "cache_entries" ADD CONSTRAINT "cache_entries_module_version_id_module_versions_id_fk" FOREIGN KEY ("module_version_id") REFERENCES "public"."module_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "cache_entries_module_idx" ON "cache_entries" USING btree ("module","scope","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "cache_entries_lru_idx" ON "cache_entries" USING btree ("last_used_at");--> statement-breakpoint
CREATE INDEX "cache_reservations_task_idx" ON "cache_reservations" USING btree ("task_id");--> statement-breakpoint
CREATE INDEX "tasks_cached_idx" ON "tasks" USING btree ("finished_at") WHERE cache_key is not null;
CREATE TABLE "executor_hosts" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"executors" text[] NOT NULL,
	"pools" text[] NOT NULL,
	"capacity" integer NOT NULL,
	"running" integer NOT NULL,
	"gpus" integer DEFAULT 0 NOT NULL,
	"hot_clusters" text[] DEFAULT '{}'::text[] NOT NULL,
	"hot_cluster_executors" text[] DEFAULT '{}'::text[] NOT NULL,
	"version" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"last_seen_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "hot_cluster_leases" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"cluster_id" uuid NOT NULL,
	"task_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"host" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"released_at" timestamp with time zone,
	CONSTRAINT "hot_cluster_leases_attempt" UNIQUE("task_id","attempt")
);
--> statement-breakpoint
CREATE TABLE "hot_clusters" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"executor" text NOT NULL,
	"pool" text NOT NULL,
	"spec" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"state" text DEFAULT 'STARTING' NOT NULL,
	"idle_timeout_ms" bigint NOT NULL,
	"last_used_at" timestamp with time zone,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ended_at" timestamp with time zone,
	"end_reason" text
);
--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "gpus" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "hot_cluster" text;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "provisioning_ms" integer;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "execution_ms" integer;--> statement-breakpoint
ALTER TABLE "hot_cluster_leases" ADD CONSTRAINT "hot_cluster_leases_cluster_id_hot_clusters_id_fk" FOREIGN KEY ("cluster_id") REFERENCES "public"."hot_clusters"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "hot_cluster_leases" ADD CONSTRAINT "hot_cluster_leases_task_id_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."tasks"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "hot_clusters" ADD CONSTRAINT "hot_clusters_created_by_identities_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "executor_hosts_seen_idx" ON "executor_hosts" USING btree ("last_seen_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "hot_cluster_leases_cluster_idx" ON "hot_cluster_leases" USING btree ("cluster_id");--> statement-breakpoint
CREATE UNIQUE INDEX "hot_clusters_live_name" ON "hot_clusters" USING btree ("name") WHERE state <> 'ENDED';
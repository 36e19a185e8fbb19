CREATE TABLE "object_store_replicas" (
	"replica" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"backend" text NOT NULL,
	"store_id" text NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "object_store_replicas_seen_idx" ON "object_store_replicas" USING btree ("last_seen_at" DESC NULLS LAST);
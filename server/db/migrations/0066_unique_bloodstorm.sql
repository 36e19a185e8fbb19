ALTER TABLE "installation" ADD COLUMN "orphans_swept_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "installation" ADD COLUMN "orphan_sightings" jsonb DEFAULT '{}'::jsonb NOT NULL;
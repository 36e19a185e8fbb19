ALTER TABLE "datasets" ADD COLUMN "catalog_published_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "datasets" ADD COLUMN "catalog_published_by" uuid;--> statement-breakpoint
ALTER TABLE "datasets" ADD CONSTRAINT "datasets_catalog_published_by_identities_id_fk" FOREIGN KEY ("catalog_published_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;
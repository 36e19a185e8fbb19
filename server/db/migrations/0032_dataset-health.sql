CREATE TABLE "dataset_freshness" (
	"dataset_id" uuid PRIMARY KEY NOT NULL,
	"expected_every_seconds" integer NOT NULL,
	"policy" text NOT NULL,
	"max_wait_seconds" integer NOT NULL,
	"late_recorded_at" timestamp with time zone,
	"set_by" uuid,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "dataset_profiles" (
	"dataset_version_id" uuid NOT NULL,
	"column" text NOT NULL,
	"profile" jsonb NOT NULL,
	"source" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dataset_profiles_dataset_version_id_column_pk" PRIMARY KEY("dataset_version_id","column")
);
--> statement-breakpoint
ALTER TABLE "dataset_freshness" ADD CONSTRAINT "dataset_freshness_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dataset_freshness" ADD CONSTRAINT "dataset_freshness_set_by_identities_id_fk" FOREIGN KEY ("set_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dataset_profiles" ADD CONSTRAINT "dataset_profiles_dataset_version_id_dataset_versions_id_fk" FOREIGN KEY ("dataset_version_id") REFERENCES "public"."dataset_versions"("id") ON DELETE no action ON UPDATE no action;
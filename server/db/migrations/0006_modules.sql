CREATE TABLE "namespaces" (
	"name" text PRIMARY KEY NOT NULL,
	"team_id" uuid NOT NULL,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "team_members" (
	"team_id" uuid NOT NULL,
	"identity_id" uuid NOT NULL,
	"role" text NOT NULL,
	"added_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "team_members_team_id_identity_id_pk" PRIMARY KEY("team_id","identity_id")
);
--> statement-breakpoint
CREATE TABLE "teams" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "teams_name_unique" UNIQUE("name")
);
--> statement-breakpoint
ALTER TABLE "module_tag_events" ADD COLUMN "action" text DEFAULT 'move' NOT NULL;--> statement-breakpoint
ALTER TABLE "module_versions" ADD COLUMN "test_result" jsonb;--> statement-breakpoint
ALTER TABLE "module_versions" ADD COLUMN "deprecated_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "module_versions" ADD COLUMN "deprecated_by" uuid;--> statement-breakpoint
ALTER TABLE "module_versions" ADD COLUMN "deprecation_reason" text;--> statement-breakpoint
ALTER TABLE "namespaces" ADD CONSTRAINT "namespaces_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "namespaces" ADD CONSTRAINT "namespaces_created_by_identities_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "team_members" ADD CONSTRAINT "team_members_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "team_members" ADD CONSTRAINT "team_members_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "team_members" ADD CONSTRAINT "team_members_added_by_identities_id_fk" FOREIGN KEY ("added_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "namespaces_team_idx" ON "namespaces" USING btree ("team_id");--> statement-breakpoint
CREATE INDEX "team_members_identity_idx" ON "team_members" USING btree ("identity_id");--> statement-breakpoint
ALTER TABLE "module_versions" ADD CONSTRAINT "module_versions_deprecated_by_identities_id_fk" FOREIGN KEY ("deprecated_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "tasks_module_version_idx" ON "tasks" USING btree ("module_version_id");
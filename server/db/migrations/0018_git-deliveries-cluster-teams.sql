CREATE TABLE "git_hook_deliveries" (
	"identity_id" uuid NOT NULL,
	"delivery_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "git_hook_deliveries_identity_id_delivery_id_pk" PRIMARY KEY("identity_id","delivery_id")
);
--> statement-breakpoint
ALTER TABLE "hot_clusters" ADD COLUMN "team_id" uuid;--> statement-breakpoint
ALTER TABLE "git_hook_deliveries" ADD CONSTRAINT "git_hook_deliveries_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "git_hook_deliveries_received_idx" ON "git_hook_deliveries" USING btree ("created_at");--> statement-breakpoint
ALTER TABLE "hot_clusters" ADD CONSTRAINT "hot_clusters_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE no action ON UPDATE no action;
CREATE TABLE "domain_grants" (
	"team_id" uuid NOT NULL,
	"domain" text NOT NULL,
	"granted_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "domain_grants_team_id_domain_pk" PRIMARY KEY("team_id","domain")
);
--> statement-breakpoint
ALTER TABLE "domain_grants" ADD CONSTRAINT "domain_grants_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "domain_grants" ADD CONSTRAINT "domain_grants_granted_by_identities_id_fk" FOREIGN KEY ("granted_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;
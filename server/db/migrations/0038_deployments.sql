CREATE TABLE "deployment_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"deployment_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"revision" integer,
	"actor_id" uuid,
	"reason" text,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "deployment_revisions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"deployment_id" uuid NOT NULL,
	"number" integer NOT NULL,
	"model_version_id" uuid NOT NULL,
	"state" text NOT NULL,
	"role" text DEFAULT 'MAIN' NOT NULL,
	"health" text,
	"restarts" integer DEFAULT 0 NOT NULL,
	"message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "deployment_revisions_number_key" UNIQUE("deployment_id","number")
);
--> statement-breakpoint
CREATE TABLE "deployments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"model_id" uuid NOT NULL,
	"alias" text,
	"pinned_version_id" uuid,
	"domain" text NOT NULL,
	"deployer" text NOT NULL,
	"settings" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"team_id" uuid,
	"policy" jsonb NOT NULL,
	"fallback" jsonb NOT NULL,
	"rollout" jsonb,
	"failed_over" boolean DEFAULT false NOT NULL,
	"failover_revision" integer,
	"split_before_failover" jsonb,
	"generation" integer DEFAULT 0 NOT NULL,
	"url" text,
	"ready" boolean DEFAULT false NOT NULL,
	"message" text DEFAULT 'waiting for the first reconciliation' NOT NULL,
	"traffic" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"lease_owner" text,
	"lease_until" timestamp with time zone,
	"checked_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleting_at" timestamp with time zone,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "deployments_name_key" UNIQUE("name")
);
--> statement-breakpoint
ALTER TABLE "deployment_events" ADD CONSTRAINT "deployment_events_deployment_id_deployments_id_fk" FOREIGN KEY ("deployment_id") REFERENCES "public"."deployments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployment_events" ADD CONSTRAINT "deployment_events_actor_id_identities_id_fk" FOREIGN KEY ("actor_id") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployment_revisions" ADD CONSTRAINT "deployment_revisions_deployment_id_deployments_id_fk" FOREIGN KEY ("deployment_id") REFERENCES "public"."deployments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployment_revisions" ADD CONSTRAINT "deployment_revisions_model_version_id_model_versions_id_fk" FOREIGN KEY ("model_version_id") REFERENCES "public"."model_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployments" ADD CONSTRAINT "deployments_model_id_registered_models_id_fk" FOREIGN KEY ("model_id") REFERENCES "public"."registered_models"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployments" ADD CONSTRAINT "deployments_pinned_version_id_model_versions_id_fk" FOREIGN KEY ("pinned_version_id") REFERENCES "public"."model_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployments" ADD CONSTRAINT "deployments_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployments" ADD CONSTRAINT "deployments_created_by_identities_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "deployment_events_deployment_idx" ON "deployment_events" USING btree ("deployment_id","id");--> statement-breakpoint
CREATE INDEX "deployments_model_idx" ON "deployments" USING btree ("model_id");
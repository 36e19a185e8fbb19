CREATE TABLE "signals" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"type" text NOT NULL,
	"team_id" uuid,
	"subject" text NOT NULL,
	"key" text NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"handled_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "signals_key_key" UNIQUE("key")
);
--> statement-breakpoint
CREATE TABLE "trigger_firings" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"trigger_id" uuid NOT NULL,
	"signal_id" uuid NOT NULL,
	"run_id" uuid,
	"outcome" text NOT NULL,
	"message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone,
	CONSTRAINT "trigger_firings_trigger_signal_key" UNIQUE("trigger_id","signal_id")
);
--> statement-breakpoint
CREATE TABLE "workflow_triggers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"workflow_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"source" text,
	"match_subject" text,
	"parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"parameter_map" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"parameters_domain" text DEFAULT 'production' NOT NULL,
	"overlap" text DEFAULT 'ALLOW' NOT NULL,
	"max_runs_per_minute" integer DEFAULT 10 NOT NULL,
	"paused" boolean DEFAULT false NOT NULL,
	"secret" text,
	"created_by" uuid,
	"team_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "workflow_triggers_name_key" UNIQUE("name")
);
--> statement-breakpoint
ALTER TABLE "signals" ADD CONSTRAINT "signals_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "trigger_firings" ADD CONSTRAINT "trigger_firings_trigger_id_workflow_triggers_id_fk" FOREIGN KEY ("trigger_id") REFERENCES "public"."workflow_triggers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "trigger_firings" ADD CONSTRAINT "trigger_firings_signal_id_signals_id_fk" FOREIGN KEY ("signal_id") REFERENCES "public"."signals"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "trigger_firings" ADD CONSTRAINT "trigger_firings_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workflow_triggers" ADD CONSTRAINT "workflow_triggers_workflow_id_workflows_id_fk" FOREIGN KEY ("workflow_id") REFERENCES "public"."workflows"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workflow_triggers" ADD CONSTRAINT "workflow_triggers_created_by_identities_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workflow_triggers" ADD CONSTRAINT "workflow_triggers_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "signals_unhandled_idx" ON "signals" USING btree ("created_at") WHERE handled_at is null;--> statement-breakpoint
CREATE INDEX "trigger_firings_pending_idx" ON "trigger_firings" USING btree ("trigger_id","created_at") WHERE outcome = 'PENDING';--> statement-breakpoint
CREATE INDEX "trigger_firings_recent_idx" ON "trigger_firings" USING btree ("trigger_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "trigger_firings_run_idx" ON "trigger_firings" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "workflow_triggers_match_idx" ON "workflow_triggers" USING btree ("kind","match_subject");
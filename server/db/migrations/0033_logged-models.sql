CREATE TABLE "logged_model_artifacts" (
	"model_id" text NOT NULL,
	"path" text NOT NULL,
	"digest" text NOT NULL,
	"size" bigint NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "logged_model_artifacts_model_id_path_pk" PRIMARY KEY("model_id","path")
);
--> statement-breakpoint
CREATE TABLE "logged_models" (
	"id" text PRIMARY KEY NOT NULL,
	"experiment_id" uuid NOT NULL,
	"name" text NOT NULL,
	"task_id" uuid,
	"run_id" uuid,
	"domain" text NOT NULL,
	"status" text DEFAULT 'PENDING' NOT NULL,
	"status_message" text,
	"model_type" text,
	"output_step" bigint,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "logged_model_artifacts" ADD CONSTRAINT "logged_model_artifacts_model_id_logged_models_id_fk" FOREIGN KEY ("model_id") REFERENCES "public"."logged_models"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "logged_models" ADD CONSTRAINT "logged_models_created_by_identities_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."identities"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "logged_models_experiment_idx" ON "logged_models" USING btree ("experiment_id","created_at");--> statement-breakpoint
CREATE INDEX "logged_models_task_idx" ON "logged_models" USING btree ("task_id");
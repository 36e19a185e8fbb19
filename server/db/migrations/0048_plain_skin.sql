CREATE TABLE "run_inputs" (
	"task_id" uuid NOT NULL,
	"run_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"name" text NOT NULL,
	"digest" text DEFAULT '' NOT NULL,
	"source_type" text,
	"source" text,
	"schema" text,
	"profile" text,
	"tags" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "run_inputs_task_id_kind_name_digest_pk" PRIMARY KEY("task_id","kind","name","digest")
);
--> statement-breakpoint
CREATE INDEX "run_inputs_run_idx" ON "run_inputs" USING btree ("run_id");
CREATE TABLE "model_version_parents" (
	"model_version_id" uuid NOT NULL,
	"parent_version_id" uuid NOT NULL,
	"task_id" uuid NOT NULL,
	"port" text NOT NULL,
	CONSTRAINT "model_version_parents_model_version_id_parent_version_id_task_id_port_pk" PRIMARY KEY("model_version_id","parent_version_id","task_id","port")
);
--> statement-breakpoint
ALTER TABLE "model_version_parents" ADD CONSTRAINT "model_version_parents_model_version_id_model_versions_id_fk" FOREIGN KEY ("model_version_id") REFERENCES "public"."model_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "model_version_parents" ADD CONSTRAINT "model_version_parents_parent_version_id_model_versions_id_fk" FOREIGN KEY ("parent_version_id") REFERENCES "public"."model_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "model_version_parents_parent_idx" ON "model_version_parents" USING btree ("parent_version_id");
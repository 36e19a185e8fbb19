CREATE TABLE "module_version_usage" (
	"module_version_id" uuid PRIMARY KEY NOT NULL,
	"runs" bigint NOT NULL,
	"last_used_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "module_version_usage" ADD CONSTRAINT "module_version_usage_module_version_id_module_versions_id_fk" FOREIGN KEY ("module_version_id") REFERENCES "public"."module_versions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- What the catalog counted until now, read once from every task ever run: from here on each run's start adds to it.
INSERT INTO "module_version_usage" ("module_version_id", "runs", "last_used_at")
SELECT t."module_version_id", count(DISTINCT t."run_id"), max(r."created_at")
FROM "tasks" t JOIN "runs" r ON r."id" = t."run_id"
WHERE t."module_version_id" IS NOT NULL
GROUP BY t."module_version_id";

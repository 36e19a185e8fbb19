ALTER TABLE "schedules" ADD COLUMN "parameters_domain" text DEFAULT 'production' NOT NULL;--> statement-breakpoint
ALTER TABLE "schedules" ADD COLUMN "team_id" uuid;--> statement-breakpoint
ALTER TABLE "workflows" ADD COLUMN "team_id" uuid;--> statement-breakpoint
ALTER TABLE "schedules" ADD CONSTRAINT "schedules_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workflows" ADD CONSTRAINT "workflows_team_id_teams_id_fk" FOREIGN KEY ("team_id") REFERENCES "public"."teams"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
UPDATE "workflows" w SET "team_id" = (SELECT min(m."team_id"::text)::uuid FROM "team_members" m WHERE m."identity_id" = w."created_by" AND m."role" IN ('member', 'maintainer', 'admin')) WHERE (SELECT count(*) FROM "team_members" m WHERE m."identity_id" = w."created_by" AND m."role" IN ('member', 'maintainer', 'admin')) = 1;--> statement-breakpoint
UPDATE "schedules" s SET "team_id" = (SELECT min(m."team_id"::text)::uuid FROM "team_members" m WHERE m."identity_id" = s."created_by" AND m."role" IN ('member', 'maintainer', 'admin')) WHERE (SELECT count(*) FROM "team_members" m WHERE m."identity_id" = s."created_by" AND m."role" IN ('member', 'maintainer', 'admin')) = 1;--> statement-breakpoint
UPDATE "schedules" s SET "parameters_domain" = w."domain" FROM "workflows" w WHERE w."id" = s."workflow_id";

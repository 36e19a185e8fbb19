ALTER TABLE "tasks" ADD COLUMN "executions" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "execution_attempt" integer DEFAULT 0 NOT NULL;
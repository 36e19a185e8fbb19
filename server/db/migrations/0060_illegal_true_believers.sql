CREATE TABLE "task_log_bytes" (
	"task_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"stored" bigint NOT NULL,
	"dropped" bigint DEFAULT 0 NOT NULL,
	"notice_seq" bigint,
	CONSTRAINT "task_log_bytes_task_id_attempt_pk" PRIMARY KEY("task_id","attempt")
);
--> statement-breakpoint
ALTER TABLE "tokens" ADD COLUMN "chosen" boolean DEFAULT false NOT NULL;
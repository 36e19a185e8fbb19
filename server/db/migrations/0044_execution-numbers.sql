CREATE TABLE "task_executions" (
	"task_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"count" integer NOT NULL,
	CONSTRAINT "task_executions_task_id_attempt_pk" PRIMARY KEY("task_id","attempt")
);

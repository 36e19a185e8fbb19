CREATE TABLE "object_gc_candidates" (
	"hex" text PRIMARY KEY NOT NULL,
	"size" bigint NOT NULL
);

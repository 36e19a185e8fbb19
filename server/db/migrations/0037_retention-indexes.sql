CREATE INDEX "observations_at_brin" ON "observations" USING brin ("at");--> statement-breakpoint
CREATE INDEX "signals_created_brin" ON "signals" USING brin ("created_at");
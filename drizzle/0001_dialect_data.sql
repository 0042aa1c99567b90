ALTER TABLE "jobs" ADD COLUMN "dialect_data" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
CREATE INDEX "jobs_dialect_id_idx" ON "jobs" USING btree ("dialect","id");
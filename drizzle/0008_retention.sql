ALTER TABLE "jobs" ADD COLUMN "images_expired_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "jobs_completed_idx" ON "jobs" USING btree ("completed_at");
ALTER TABLE "jobs" ADD COLUMN "usage" jsonb;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "spend_period" text;
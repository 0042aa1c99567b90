CREATE TABLE "provider_checks" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner" text,
	"provider" text NOT NULL,
	"state" text NOT NULL,
	"healthy" boolean,
	"detail" text,
	"latency_ms" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "provider_checks_created_idx" ON "provider_checks" USING btree ("created_at");
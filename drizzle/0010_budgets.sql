CREATE TABLE "spend" (
	"owner" text NOT NULL,
	"period" text NOT NULL,
	"amount" double precision DEFAULT 0 NOT NULL,
	CONSTRAINT "spend_owner_period_pk" PRIMARY KEY("owner","period")
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "budget" jsonb;
ALTER TABLE "log_heads" ADD COLUMN "epoch" bigint DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "log_heads" ADD COLUMN "restored_seq" bigint;
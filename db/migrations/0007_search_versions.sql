ALTER TABLE "search_messages" ALTER COLUMN "id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "search_messages" ALTER COLUMN "ts" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "search_messages" ALTER COLUMN "body" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "search_messages" ALTER COLUMN "tsv" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "search_messages" ADD COLUMN "version" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER INDEX "search_messages_tsv_idx" SET (fastupdate = on, gin_pending_list_limit = 2048);

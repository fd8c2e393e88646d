CREATE TABLE "search_heads" (
	"conversation_id" uuid PRIMARY KEY NOT NULL,
	"indexed_seq" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "search_messages" (
	"conversation_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"id" uuid NOT NULL,
	"sender_id" uuid,
	"ts" timestamp with time zone NOT NULL,
	"body" text NOT NULL,
	"mentions" uuid[],
	"tsv" "tsvector" NOT NULL,
	CONSTRAINT "search_messages_conversation_id_seq_pk" PRIMARY KEY("conversation_id","seq")
);
--> statement-breakpoint
CREATE TABLE "search_state" (
	"id" integer PRIMARY KEY NOT NULL,
	"language" text NOT NULL
);
--> statement-breakpoint
CREATE INDEX "search_messages_tsv_idx" ON "search_messages" USING gin ("tsv");--> statement-breakpoint
CREATE INDEX "search_messages_sender_idx" ON "search_messages" USING btree ("sender_id");
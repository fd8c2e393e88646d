CREATE TABLE "payment_accounts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"user_id" uuid,
	"currency" text NOT NULL,
	"balance" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "payment_accounts_wallet_balance" CHECK ("payment_accounts"."kind" <> 'wallet' or "payment_accounts"."balance" >= 0),
	CONSTRAINT "payment_accounts_debt_balance" CHECK ("payment_accounts"."kind" <> 'debt' or "payment_accounts"."balance" <= 0),
	CONSTRAINT "payment_accounts_owner" CHECK (("payment_accounts"."kind" in ('wallet', 'debt')) = ("payment_accounts"."user_id" is not null))
);
--> statement-breakpoint
CREATE TABLE "payment_audit" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_id" uuid,
	"event" text NOT NULL,
	"actor" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"meta" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payment_postings" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"transfer_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"amount" bigint NOT NULL,
	CONSTRAINT "payment_postings_nonzero" CHECK ("payment_postings"."amount" <> 0)
);
--> statement-breakpoint
CREATE TABLE "payment_subscriptions" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"plan_id" text NOT NULL,
	"period_start" timestamp with time zone NOT NULL,
	"period_end" timestamp with time zone NOT NULL,
	"auto_renew" boolean DEFAULT true NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payment_topups" (
	"payment_intent_id" text PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"amount" bigint NOT NULL,
	"currency" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payment_transfers" (
	"id" uuid PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"initiator" text NOT NULL,
	"idempotency_key" text NOT NULL,
	"amount" bigint NOT NULL,
	"currency" text NOT NULL,
	"conversation_id" uuid,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "payment_transfers_amount" CHECK ("payment_transfers"."amount" > 0)
);
--> statement-breakpoint
CREATE TABLE "stripe_events" (
	"id" text PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"applied_at" timestamp with time zone,
	"outcome" text
);
--> statement-breakpoint
ALTER TABLE "payment_accounts" ADD CONSTRAINT "payment_accounts_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "payment_postings" ADD CONSTRAINT "payment_postings_transfer_id_payment_transfers_id_fk" FOREIGN KEY ("transfer_id") REFERENCES "public"."payment_transfers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "payment_postings" ADD CONSTRAINT "payment_postings_account_id_payment_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."payment_accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "payment_subscriptions" ADD CONSTRAINT "payment_subscriptions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "payment_topups" ADD CONSTRAINT "payment_topups_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "payment_accounts_user_uq" ON "payment_accounts" USING btree ("kind","user_id","currency");--> statement-breakpoint
CREATE UNIQUE INDEX "payment_accounts_system_uq" ON "payment_accounts" USING btree ("kind","currency") WHERE "payment_accounts"."user_id" is null;--> statement-breakpoint
CREATE INDEX "payment_audit_user_idx" ON "payment_audit" USING btree ("user_id","at");--> statement-breakpoint
CREATE INDEX "payment_postings_account_idx" ON "payment_postings" USING btree ("account_id","id");--> statement-breakpoint
CREATE INDEX "payment_postings_transfer_idx" ON "payment_postings" USING btree ("transfer_id");--> statement-breakpoint
CREATE INDEX "payment_subscriptions_end_idx" ON "payment_subscriptions" USING btree ("period_end");--> statement-breakpoint
CREATE INDEX "payment_topups_user_idx" ON "payment_topups" USING btree ("user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "payment_transfers_idem_uq" ON "payment_transfers" USING btree ("initiator","idempotency_key");
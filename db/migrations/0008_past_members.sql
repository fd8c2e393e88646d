CREATE TABLE "past_members" (
	"user_id" uuid NOT NULL,
	"conversation_id" uuid NOT NULL,
	"left_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "past_members_user_id_conversation_id_pk" PRIMARY KEY("user_id","conversation_id")
);
--> statement-breakpoint
ALTER TABLE "past_members" ADD CONSTRAINT "past_members_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "past_members" ADD CONSTRAINT "past_members_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- Departures before this table existed, from the log's member events (one scan, at migration).
INSERT INTO "past_members" ("user_id", "conversation_id", "left_at")
SELECT u.id, e.conversation_id, max(e.ts)
FROM "log_events" e
CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(e.data->'users') = 'array' THEN e.data->'users' ELSE '[]'::jsonb END) AS x(id)
JOIN "users" u ON u.id::text = x.id
JOIN "conversations" c ON c.id = e.conversation_id
WHERE e.kind = 'member' AND e.data->>'op' IN ('left', 'removed')
GROUP BY u.id, e.conversation_id
ON CONFLICT DO NOTHING;

-- Buttons under a message a workflow sends (`notify.send-with-buttons`): what each does
-- ({"label", "action": {"kind": "complete_task" | "start_run", ...}}), kept here so the chat
-- carries only the message id and a position. A message is answered by one press: the first
-- press stamps `pressed_at` and `pressed` (what it did, as the message then reads).
ALTER TABLE notifications
    ADD COLUMN buttons    JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(buttons) = 'array' AND jsonb_array_length(buttons) <= 8),
    ADD COLUMN pressed_at TIMESTAMPTZ,
    ADD COLUMN pressed    TEXT;

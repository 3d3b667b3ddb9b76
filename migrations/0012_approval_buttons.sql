-- Approvals from the chat (issue 12): each `approval` step that starts waiting gets a short
-- id (Telegram's callback data holds at most 64 bytes, too few for a run uuid and a step
-- name) and a private message with Approve / Reject buttons for each person who may decide.
-- Once the approval ends (decided by anyone, timed out, cancelled) `outcome` says how, and
-- every message already sent is edited into it; one sent later is edited as it is reported.

CREATE TABLE approvals (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     UUID NOT NULL,
    step       TEXT NOT NULL,
    workflow   TEXT NOT NULL,
    -- the question with its deadline, as every message asking it reads
    message    TEXT NOT NULL CHECK (length(btrim(message)) BETWEEN 1 AND 4096),
    -- how it ended, as the edited messages read; NULL while it waits
    outcome    TEXT CHECK (outcome IS NULL OR length(btrim(outcome)) BETWEEN 1 AND 4096),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (run_id, step),
    FOREIGN KEY (run_id, step) REFERENCES run_steps (run_id, step) ON DELETE CASCADE
);

-- `approval_id`: the message carries that approval's buttons. `edit_of`: this notification
-- replaces the text of an earlier one (its buttons go) instead of being a new message; at
-- most one edit per message. `message_id`: the Telegram message the bot delivered it as.
ALTER TABLE notifications
    ADD COLUMN approval_id BIGINT REFERENCES approvals (id) ON DELETE CASCADE,
    ADD COLUMN edit_of     BIGINT UNIQUE REFERENCES notifications (id) ON DELETE CASCADE,
    ADD COLUMN message_id  BIGINT;
CREATE INDEX notifications_by_approval ON notifications (approval_id) WHERE approval_id IS NOT NULL;

-- The bot's own words around a notification in the recipient's language (issue 16). The
-- engine keeps, beside the English text, what the bot needs to write that frame itself:
-- `frame` on a notification (an approval's question, deadline and timeout, or how the
-- approval ended), and on an approval the parts every message of it shares: `ask`
-- (workflow, question, what a timeout decides) and, once it ended, `ended` (decision, by
-- whom, when, comment). Rows from before this have none, and go out as their text.

ALTER TABLE notifications ADD COLUMN frame JSONB;
ALTER TABLE approvals
    ADD COLUMN ask   JSONB,
    ADD COLUMN ended JSONB;

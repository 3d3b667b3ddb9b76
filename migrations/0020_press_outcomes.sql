-- What a press of a workflow's button did, as data (issue 16): `pressed` keeps it in
-- English for the API and the web app, `press_outcome` lets the bot say it in the presser's
-- language ({"kind": "task_done", "title": …} or {"kind": "run_started", "label": …}).
-- Presses from before this have none, and read as their English text.

ALTER TABLE notifications ADD COLUMN press_outcome JSONB;

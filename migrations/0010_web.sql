-- The web app (issue 13): browser sessions and one-time sign-in links.

-- A signed-in browser. The cookie holds a random secret; only its SHA-256 is stored, so a
-- leaked database holds no working session. `expires_at` slides forward while the session
-- is used (idle timeout) and never past `created_at` plus the absolute lifetime.
CREATE TABLE web_sessions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret_hash  BYTEA NOT NULL UNIQUE,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    -- every state-changing request of the session must carry it (forms, fetch headers)
    csrf_token   TEXT NOT NULL,
    -- how the session was signed in: a one-time link from the bot, Telegram Mini App
    -- initData, or a pasted API token
    via          TEXT NOT NULL CHECK (via IN ('link', 'telegram', 'token')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ
);
CREATE INDEX web_sessions_user ON web_sessions (user_id) WHERE ended_at IS NULL;

-- A one-time sign-in link, minted for the user who sent `/web` to the bot. Stored as the
-- SHA-256 of its code; works once, within minutes.
CREATE TABLE web_sign_in_links (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_hash  BYTEA NOT NULL UNIQUE,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

-- The pipeline board reads each stage's deals, most recently moved first.
CREATE INDEX deals_board ON deals (stage_id, stage_changed_at DESC) WHERE deleted_at IS NULL;

-- The web app's tables sort by name: keyset pages in that order without sorting the table.
CREATE INDEX contacts_name ON contacts (name, id) WHERE deleted_at IS NULL;
CREATE INDEX companies_name ON companies (name, id) WHERE deleted_at IS NULL;

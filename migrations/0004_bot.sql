-- One-time invites that let a new person link their Telegram account to a new CRM user.
-- Only the SHA-256 of the code is stored: the code is shown once, to the admin who made it.
CREATE TABLE invites (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_hash   BYTEA NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'viewer')),
    created_by  BIGINT REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    redeemed_by BIGINT REFERENCES users (id),
    redeemed_at TIMESTAMPTZ,
    CHECK ((redeemed_by IS NULL) = (redeemed_at IS NULL)),
    CHECK (expires_at > created_at)
);
-- the admin's list of invites still open
CREATE INDEX invites_open ON invites (expires_at) WHERE redeemed_at IS NULL;

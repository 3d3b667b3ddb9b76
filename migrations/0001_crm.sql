-- CRM records. Postgres is the source of truth; every write goes through crm-store,
-- which records an activity row and an outbox event in the same transaction.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Fuzzy search works on words, not on whole rows: names repeat a small vocabulary (a
-- million contacts share a few thousand first and last names), so trigram matching a
-- query against every row means rechecking thousands of rows per query. Instead each
-- searchable record keeps its lower-cased words in a `words` array (GIN-indexed), every
-- word seen lands in the small `search_words` dictionary (trigram-indexed), and a query
-- first corrects its words against the dictionary, then finds records by exact words.
CREATE FUNCTION crm_words(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(array_agg(DISTINCT w ORDER BY w), '{}')
    FROM regexp_split_to_table(lower(COALESCE(t, '')), '[^[:alnum:]]+') AS w
    WHERE w <> '' AND length(w) <= 60
$$;

CREATE TABLE search_words (
    word TEXT PRIMARY KEY
);
CREATE INDEX search_words_trgm ON search_words USING gin (word gin_trgm_ops);

-- Statement-level, so a COPY of a million rows adds its words in one INSERT. Words are
-- never removed: a stale word only costs a lookup that finds no record.
CREATE FUNCTION crm_collect_words() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_words (word)
    SELECT DISTINCT w FROM new_rows, unnest(new_rows.words) AS w
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TABLE users (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             TEXT NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    email            TEXT CHECK (email IS NULL OR email ~* '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    role             TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'viewer')),
    telegram_user_id BIGINT UNIQUE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;

-- Tokens are stored as SHA-256 of the secret; the secret is shown once at creation.
CREATE TABLE api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

CREATE TABLE companies (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 300),
    domain     TEXT,
    phone      TEXT,
    owner_id   BIGINT REFERENCES users (id),
    tags       TEXT[] NOT NULL DEFAULT '{}',
    custom     JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom) = 'object'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    words      TEXT[] GENERATED ALWAYS AS (crm_words(name)) STORED
);
CREATE INDEX companies_words ON companies USING gin (words) WHERE deleted_at IS NULL;
CREATE TRIGGER companies_words_insert AFTER INSERT ON companies
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_collect_words();
CREATE TRIGGER companies_words_update AFTER UPDATE ON companies
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_collect_words();
CREATE INDEX companies_owner ON companies (owner_id, id) WHERE deleted_at IS NULL;
-- keyset pages in the default order (newest first) without sorting the table
CREATE INDEX companies_created ON companies (created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE contacts (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 300),
    email      TEXT CHECK (email IS NULL OR email ~* '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    phone      TEXT,
    company_id BIGINT REFERENCES companies (id),
    owner_id   BIGINT REFERENCES users (id),
    tags       TEXT[] NOT NULL DEFAULT '{}',
    custom     JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom) = 'object'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    words      TEXT[] GENERATED ALWAYS AS (crm_words(name)) STORED,
    -- "+1 (555) 010-2030" and "5550102030" find each other
    phone_digits TEXT GENERATED ALWAYS AS (NULLIF(regexp_replace(phone, '[^0-9]', '', 'g'), '')) STORED
);
-- Unique among live contacts only: a deleted contact frees its address.
CREATE UNIQUE INDEX contacts_email_live_key ON contacts (lower(email)) WHERE deleted_at IS NULL AND email IS NOT NULL;
-- email prefix search ("ann@", "ann.lee@exa")
CREATE INDEX contacts_email_prefix ON contacts (lower(email) text_pattern_ops) WHERE deleted_at IS NULL;
CREATE INDEX contacts_words ON contacts USING gin (words) WHERE deleted_at IS NULL;
CREATE INDEX contacts_phone_trgm ON contacts USING gin (phone_digits gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE TRIGGER contacts_words_insert AFTER INSERT ON contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_collect_words();
CREATE TRIGGER contacts_words_update AFTER UPDATE ON contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_collect_words();
CREATE INDEX contacts_owner ON contacts (owner_id, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_company ON contacts (company_id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_created ON contacts (created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE pipelines (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- kind tells the store what moving a deal here means: 'won'/'lost' close the deal.
CREATE TABLE stages (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline_id BIGINT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name        TEXT NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    position    INT NOT NULL CHECK (position >= 0),
    kind        TEXT NOT NULL DEFAULT 'open' CHECK (kind IN ('open', 'won', 'lost')),
    UNIQUE (pipeline_id, position) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (pipeline_id, name),
    -- target of the composite key that keeps a deal's stage inside its pipeline
    UNIQUE (id, pipeline_id)
);

CREATE TABLE deals (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title          TEXT NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 300),
    -- money in minor units (cents) of an ISO 4217 currency: exact, no floats
    amount_minor   BIGINT NOT NULL DEFAULT 0 CHECK (amount_minor >= 0),
    currency       CHAR(3) NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    pipeline_id    BIGINT NOT NULL REFERENCES pipelines (id),
    stage_id       BIGINT NOT NULL,
    contact_id     BIGINT REFERENCES contacts (id),
    company_id     BIGINT REFERENCES companies (id),
    owner_id       BIGINT REFERENCES users (id),
    expected_close DATE,
    status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
    closed_at      TIMESTAMPTZ,
    tags           TEXT[] NOT NULL DEFAULT '{}',
    custom         JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom) = 'object'),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    stage_changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at     TIMESTAMPTZ,
    words          TEXT[] GENERATED ALWAYS AS (crm_words(title)) STORED,
    FOREIGN KEY (stage_id, pipeline_id) REFERENCES stages (id, pipeline_id)
);
CREATE INDEX deals_words ON deals USING gin (words) WHERE deleted_at IS NULL;
CREATE TRIGGER deals_words_insert AFTER INSERT ON deals
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_collect_words();
CREATE TRIGGER deals_words_update AFTER UPDATE ON deals
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_collect_words();
CREATE INDEX deals_stage ON deals (stage_id, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_owner ON deals (owner_id, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_contact ON deals (contact_id) WHERE deleted_at IS NULL;
CREATE INDEX deals_created ON deals (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_open_stale ON deals (stage_changed_at) WHERE deleted_at IS NULL AND status = 'open';

CREATE TABLE tasks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       TEXT NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 300),
    due_at      TIMESTAMPTZ,
    done        BOOLEAN NOT NULL DEFAULT false,
    done_at     TIMESTAMPTZ,
    assignee_id BIGINT REFERENCES users (id),
    -- a task links to at most one record
    contact_id  BIGINT REFERENCES contacts (id),
    company_id  BIGINT REFERENCES companies (id),
    deal_id     BIGINT REFERENCES deals (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at  TIMESTAMPTZ,
    CHECK (num_nonnulls(contact_id, company_id, deal_id) <= 1),
    CHECK (done = (done_at IS NOT NULL))
);
CREATE INDEX tasks_due_open ON tasks (assignee_id, due_at) WHERE deleted_at IS NULL AND NOT done;
CREATE INDEX tasks_deal ON tasks (deal_id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_contact ON tasks (contact_id) WHERE deleted_at IS NULL;
-- the default task order: soonest due first, undated last (crm_store::tasks sorts by this expression)
CREATE INDEX tasks_due ON tasks ((COALESCE(due_at, 'infinity'::timestamptz)), id) WHERE deleted_at IS NULL;

CREATE TABLE notes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body       TEXT NOT NULL CHECK (length(btrim(body)) BETWEEN 1 AND 20000),
    author_id  BIGINT REFERENCES users (id),
    -- a note belongs to exactly one record
    contact_id BIGINT REFERENCES contacts (id),
    company_id BIGINT REFERENCES companies (id),
    deal_id    BIGINT REFERENCES deals (id),
    task_id    BIGINT REFERENCES tasks (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CHECK (num_nonnulls(contact_id, company_id, deal_id, task_id) = 1)
);
CREATE INDEX notes_contact ON notes (contact_id, id) WHERE deleted_at IS NULL;
CREATE INDEX notes_company ON notes (company_id, id) WHERE deleted_at IS NULL;
CREATE INDEX notes_deal ON notes (deal_id, id) WHERE deleted_at IS NULL;
CREATE INDEX notes_task ON notes (task_id, id) WHERE deleted_at IS NULL;
CREATE INDEX notes_created ON notes (created_at, id) WHERE deleted_at IS NULL;

-- Every change, who made it, and the record before and after.
CREATE TABLE activity (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id    BIGINT REFERENCES users (id),
    -- set when the change was made by a workflow run (loop protection for triggers)
    origin_run  UUID,
    record_kind TEXT NOT NULL,
    record_id   BIGINT NOT NULL,
    action      TEXT NOT NULL,
    before      JSONB,
    after       JSONB
);
CREATE INDEX activity_record ON activity (record_kind, record_id, id);

-- Record-change events, written in the same transaction as the change. Consumers claim
-- rows with FOR UPDATE SKIP LOCKED and mark them; ids alone are not a safe cursor because
-- identity values become visible out of commit order.
CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id     BIGINT REFERENCES users (id),
    origin_run   UUID,
    record_kind  TEXT NOT NULL,
    record_id    BIGINT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    -- which fields changed, e.g. {"stage_id": [3, 4]}
    changes      JSONB NOT NULL DEFAULT '{}',
    record       JSONB,
    processed_at TIMESTAMPTZ
);
CREATE INDEX outbox_pending ON outbox (id) WHERE processed_at IS NULL;

-- A default sales pipeline so a fresh install can take deals at once.
INSERT INTO pipelines (name) VALUES ('Sales');
INSERT INTO stages (pipeline_id, name, position, kind)
SELECT p.id, s.name, s.position, s.kind
FROM pipelines p,
     (VALUES ('Lead', 0, 'open'), ('Qualified', 1, 'open'), ('Proposal', 2, 'open'),
             ('Negotiation', 3, 'open'), ('Won', 4, 'won'), ('Lost', 5, 'lost')) AS s (name, position, kind)
WHERE p.name = 'Sales';

-- Typed custom fields: per kind of record, a key of the record's `custom` object with a
-- type, a label, whether it is required and (for a choice) its choices. The store checks
-- every write of `custom` against these; keys without a definition stay free-form.
CREATE TABLE custom_fields (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('contact', 'company', 'deal', 'task')),
    key        TEXT NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    label      TEXT NOT NULL CHECK (length(btrim(label)) BETWEEN 1 AND 100),
    type       TEXT NOT NULL CHECK (type IN ('text', 'number', 'money', 'date', 'choice', 'yes_no')),
    required   BOOLEAN NOT NULL DEFAULT false,
    choices    TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (kind, key),
    CHECK ((type = 'choice') = (cardinality(choices) > 0))
);

-- Tasks carry custom fields like the other records.
ALTER TABLE tasks ADD COLUMN custom JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom) = 'object');

-- `?field.KEY=VALUE` on a defined custom field filters with `custom @> {"KEY": value}`
-- (crm_store::custom_fields), which a jsonb_path_ops GIN index answers without reading
-- every live record. Its cost on writes was measured against the CSV import's goal
-- (README, `crm bench import`).
CREATE INDEX contacts_custom ON contacts USING gin (custom jsonb_path_ops) WHERE deleted_at IS NULL;
CREATE INDEX companies_custom ON companies USING gin (custom jsonb_path_ops) WHERE deleted_at IS NULL;
CREATE INDEX deals_custom ON deals USING gin (custom jsonb_path_ops) WHERE deleted_at IS NULL;
CREATE INDEX tasks_custom ON tasks USING gin (custom jsonb_path_ops) WHERE deleted_at IS NULL;

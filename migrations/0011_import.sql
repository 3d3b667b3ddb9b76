-- A CSV import looks up a batch's companies by domain, else by name, case-insensitively
-- (crm_store::import): without these, every batch would read the whole table once per row.
CREATE INDEX companies_domain_lower ON companies (lower(domain)) WHERE deleted_at IS NULL AND domain IS NOT NULL;
CREATE INDEX companies_name_lower ON companies (lower(name)) WHERE deleted_at IS NULL;

-- The language the bot speaks to a person in (issue 16): `en`, `ru`, or NULL to follow their
-- Telegram app's language. The engine checks the code against the languages it speaks; the
-- check here only keeps the column a language code.
ALTER TABLE users
    ADD COLUMN language TEXT CHECK (language IS NULL OR language ~ '^[a-z]{2,3}$');

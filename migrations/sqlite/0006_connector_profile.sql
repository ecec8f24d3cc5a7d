-- Sites may use the `connector` profile (this project's WordPress plugin).
-- SQLite cannot alter a CHECK constraint, and rebuilding `sites` inside the
-- migration's transaction would cascade-delete every grant (foreign keys
-- cannot be switched off there). Allowing one more value changes no
-- stored row, so the table's definition is edited in place, the way
-- SQLite's documentation describes for such changes. RESET makes this
-- connection read the new definition; the index created and dropped after
-- it bumps the schema version, so every other open connection does too.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(sql, 'CHECK (profile IN (''twl-sso'', ''miniorange''))',
                       'CHECK (profile IN (''twl-sso'', ''connector'', ''miniorange''))')
WHERE type = 'table' AND name = 'sites';
PRAGMA writable_schema = RESET;
CREATE INDEX sites_schema_bump_idx ON sites (id);
DROP INDEX sites_schema_bump_idx;

-- Sites may use the `connector` profile (this project's WordPress plugin).
ALTER TABLE sites DROP CONSTRAINT sites_profile_check;
ALTER TABLE sites ADD CONSTRAINT sites_profile_check
    CHECK (profile IN ('twl-sso', 'connector', 'miniorange'));

-- Client sites. url is normalised exactly as the tokens' aud; roles are
-- the roles that may be granted there, space-separated, highest first;
-- secret is the sealed HS256 secret of a miniOrange site (NULL otherwise).
CREATE TABLE sites (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    client         TEXT NOT NULL,
    url            TEXT NOT NULL,
    profile        TEXT NOT NULL CHECK (profile IN ('twl-sso', 'miniorange')),
    login_template TEXT NOT NULL,
    username_claim TEXT NOT NULL,
    signing        TEXT NOT NULL CHECK (signing IN ('RS256', 'HS256')),
    secret         TEXT,
    roles          TEXT NOT NULL,
    token_lifetime BIGINT NOT NULL CHECK (token_lifetime BETWEEN 10 AND 300),
    enabled        BIGINT NOT NULL DEFAULT 1,
    notes          TEXT NOT NULL DEFAULT '',
    version        BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    CONSTRAINT sites_url_key UNIQUE (url),
    CONSTRAINT sites_secret_check CHECK ((signing = 'HS256') = (secret IS NOT NULL))
);
CREATE INDEX sites_client_idx ON sites (client, name);

-- A grant gives the person with this (lower-cased) e-mail one WordPress role
-- on one site. By e-mail, so access can be granted before a first sign-in.
CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    site_id    TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    expires_at BIGINT,
    reason     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    CONSTRAINT grants_email_site_key UNIQUE (email, site_id)
);
CREATE INDEX grants_site_idx ON grants (site_id);

-- Per person and site: pinned as a favourite, and when last launched.
CREATE TABLE site_prefs (
    email            TEXT NOT NULL,
    site_id          TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    favourite        BIGINT NOT NULL DEFAULT 0,
    last_launched_at BIGINT,
    PRIMARY KEY (email, site_id)
);

-- Every launch, issued or refused. Written before a token leaves; the
-- token itself is never stored, only its jti. Kept when a site is deleted.
CREATE TABLE launches (
    -- The order launches were recorded in (several share a second).
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    at         BIGINT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('launched', 'refused')),
    reason     TEXT,
    person_id  TEXT NOT NULL,
    email      TEXT NOT NULL,
    site_id    TEXT NOT NULL,
    site_url   TEXT NOT NULL,
    role       TEXT,
    profile    TEXT,
    alg        TEXT,
    jti        TEXT,
    kid        TEXT,
    deep_link  TEXT,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    request_id TEXT NOT NULL,
    CONSTRAINT launches_jti_key UNIQUE (jti)
);
CREATE INDEX launches_at_idx ON launches (at);
CREATE INDEX launches_email_idx ON launches (email, seq);

-- Dashboard users (DESIGN §5): argon2id password hashes (PHC strings), roles per site, and
-- signed-in browser sessions (SHA-256 of the cookie's token; the token is never stored).
CREATE TABLE IF NOT EXISTS users (
    id              UINTEGER PRIMARY KEY,
    email           VARCHAR NOT NULL UNIQUE,
    password_hash   VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    user_id         UINTEGER NOT NULL,
    site_id         UINTEGER NOT NULL,
    role            VARCHAR NOT NULL        -- owner | admin | viewer
);
CREATE TABLE IF NOT EXISTS login_sessions (
    token_hash      VARCHAR PRIMARY KEY,
    user_id         UINTEGER NOT NULL,
    expires_at      TIMESTAMP NOT NULL
);

-- Patrons registered at a branch counter (rules P1, P2, S2), their web-service credentials
-- (P3-P5, P10), sessions, email verifications (P9), reset links (P11) and login failures
-- (P13). Instants are TEXT as written by clock::format_instant, dates TEXT YYYY-MM-DD,
-- booleans INTEGER 0/1 (the same on both backends).
CREATE TABLE patrons (
    card_number        TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    name_reading       TEXT NOT NULL,
    birth_date         TEXT NOT NULL,
    -- Rule P2: the kind of document only, never its number.
    id_document        TEXT NOT NULL,
    registered_branch  TEXT NOT NULL,
    -- Rule P9: the address in force, set only when a verification link is opened.
    email              TEXT,
    email_verified_at  TEXT,
    web_enabled        INTEGER NOT NULL DEFAULT 0,
    -- Argon2id PHC string (P10); NULL until the web service is enabled.
    password_hash      TEXT,
    password_temporary INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

-- Only a SHA-256 of the token is stored.
CREATE TABLE patron_sessions (
    token_hash   TEXT PRIMARY KEY,
    card_number  TEXT NOT NULL REFERENCES patrons(card_number),
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX patron_sessions_card ON patron_sessions(card_number);

CREATE TABLE email_verifications (
    verification_id TEXT PRIMARY KEY,
    card_number     TEXT NOT NULL REFERENCES patrons(card_number),
    email           TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used            INTEGER NOT NULL DEFAULT 0,
    -- A newer request for the same patron replaced this one.
    superseded      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX email_verifications_card ON email_verifications(card_number);

CREATE TABLE password_resets (
    token_hash  TEXT PRIMARY KEY,
    card_number TEXT NOT NULL REFERENCES patrons(card_number),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX password_resets_card ON password_resets(card_number);

-- Rule P13: one row per failed attempt and counter; key_hash is a SHA-256 of the scope and
-- the card number, user name or client address. Rows older than the window are deleted.
CREATE TABLE login_failures (
    failure_id TEXT PRIMARY KEY,
    scope      TEXT NOT NULL,
    key_hash   TEXT NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures(scope, key_hash, at);
CREATE INDEX login_failures_at ON login_failures(at);

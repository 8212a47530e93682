-- Staff accounts scoped to branches (rule S3), their sessions and the audit record.
CREATE TABLE staff (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    branches      TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

-- Sessions are kept server-side; only a SHA-256 of the token is stored.
CREATE TABLE staff_sessions (
    token_hash   TEXT PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES staff(username),
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX staff_sessions_user ON staff_sessions(username);

-- Rule S3: every staff action with who, when and where.
CREATE TABLE audit_log (
    audit_id TEXT PRIMARY KEY,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    branch   TEXT NOT NULL DEFAULT '',
    subject  TEXT NOT NULL DEFAULT '',
    at       TEXT NOT NULL
);

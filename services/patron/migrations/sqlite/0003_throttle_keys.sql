-- Rule P13 under parallel guesses: one row per counter (scope and key hash), which every
-- attempt locks (an upsert) before it counts the counter's rows of `login_failures` and
-- adds its own. Attempts on one counter are thus counted one after the other, on both
-- backends, and a guess holds its place before its password is verified. From now on a row
-- of `login_failures` is an attempt that has not been given back: a failure, or one whose
-- password is being verified (a successful one is deleted again).
CREATE TABLE login_throttle_keys (
    scope      TEXT NOT NULL,
    key_hash   TEXT NOT NULL,
    touched_at TEXT NOT NULL,
    PRIMARY KEY (scope, key_hash)
);
CREATE INDEX login_throttle_keys_touched ON login_throttle_keys(touched_at);

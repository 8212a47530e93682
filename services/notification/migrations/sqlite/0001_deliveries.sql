-- Notification: one row per mail an event calls for (rules N1, N2). The address is not
-- stored until the mail is sent: it is asked of patron-account at send time, and the row
-- keeps the one it was sent to for the delivery log.
CREATE TABLE deliveries (
    delivery_id     TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL,
    template        TEXT NOT NULL,
    card_number     TEXT NOT NULL,
    params          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'no_address')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    recipient       TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    -- The cause event's trace context (JSON), so the send joins its trace.
    trace           TEXT NOT NULL DEFAULT '[]',
    -- A second line behind the inbox: an event redelivered after its inbox row was purged
    -- still cannot make the same mail twice.
    UNIQUE (event_id, template)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_created ON deliveries (created_at);

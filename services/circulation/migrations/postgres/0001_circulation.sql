-- Circulation: one database shared by the three branch instances (ARCHITECTURE.md "Data").
-- Instants are TEXT as written by clock::format_instant, dates TEXT YYYY-MM-DD (library-local),
-- booleans BIGINT 0/1: the same values on both backends.

-- The titles circulation knows of, fed by catalog events (each service owns its data), and
-- the guard of each title's queue: every transaction that reads or changes a title's holds or
-- items first bumps `version`, which takes the row's lock on PostgreSQL (and SQLite's write
-- lock), so that two instances checking in copies of one title take turns (H6, H7).
CREATE TABLE titles (
    title_id      TEXT PRIMARY KEY,
    material_type TEXT NOT NULL,
    -- Rule H6: the last sequence number given to a hold on this title.
    hold_seq      BIGINT NOT NULL DEFAULT 0,
    version       BIGINT NOT NULL DEFAULT 0
);

-- The items projection (rule M1), with where each item is now.
CREATE TABLE items (
    barcode     TEXT PRIMARY KEY,
    title_id    TEXT NOT NULL REFERENCES titles(title_id),
    home_branch TEXT NOT NULL,
    -- available | on_loan | in_transit | on_hold_shelf
    status      TEXT NOT NULL,
    -- The branch whose open shelf or hold shelf holds it, or which sent it into transit;
    -- NULL while on loan.
    location    TEXT,
    transit_to  TEXT,
    -- The hold it is allocated to (in transit to, or on the hold shelf for). Unique: no hold
    -- gets two items.
    hold_id     TEXT UNIQUE,
    due_date    TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX items_title ON items(title_id);
CREATE INDEX items_transit_to ON items(transit_to) WHERE status = 'in_transit';
CREATE INDEX items_location ON items(location, status);

-- Current loans only (rule V1: a returned loan moves to returned_loans without its patron).
CREATE TABLE loans (
    loan_id        TEXT PRIMARY KEY,
    barcode        TEXT NOT NULL UNIQUE REFERENCES items(barcode),
    title_id       TEXT NOT NULL,
    material_type  TEXT NOT NULL,
    card_number    TEXT NOT NULL,
    branch         TEXT NOT NULL,
    checked_out_at TEXT NOT NULL,
    due_date       TEXT NOT NULL,
    renewed        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX loans_card ON loans(card_number);
CREATE INDEX loans_title ON loans(title_id);

-- Rule V1: what remains of a returned loan. Library-local dates only, and the reader only for
-- a patron who opted in to a reading history.
CREATE TABLE returned_loans (
    return_id      TEXT PRIMARY KEY,
    barcode        TEXT NOT NULL,
    title_id       TEXT NOT NULL,
    material_type  TEXT NOT NULL,
    branch         TEXT NOT NULL,
    returned_to    TEXT NOT NULL,
    checked_out_on TEXT NOT NULL,
    due_date       TEXT NOT NULL,
    returned_on    TEXT NOT NULL,
    renewed        BIGINT NOT NULL,
    reader         TEXT
);
CREATE INDEX returned_loans_reader ON returned_loans(reader) WHERE reader IS NOT NULL;

-- Holds (rules H4-H11). `card_number` is NULL only on a fulfilled hold whose loan was
-- returned (V1).
CREATE TABLE holds (
    hold_id           TEXT PRIMARY KEY,
    card_number       TEXT,
    title_id          TEXT NOT NULL REFERENCES titles(title_id),
    pickup_branch     TEXT NOT NULL,
    status            TEXT NOT NULL,
    placed_at         TEXT NOT NULL,
    seq               BIGINT NOT NULL,
    receipt_mail      BIGINT NOT NULL,
    -- web | counter, and the counter's branch
    origin            TEXT NOT NULL,
    origin_branch     TEXT,
    -- The item held, or the item of an ended hold.
    barcode           TEXT,
    ready_until       TEXT,
    mail_sent_at      TEXT,
    -- The id of the ready_to_notify event, matched with MailSent.cause_event_id (H8).
    notice_event_id   TEXT,
    -- patron | staff, for a cancelled hold (H10).
    cancelled_by      TEXT,
    reason            TEXT,
    -- 1 while a released item still sits on this pickup branch's hold shelf (S1 list of
    -- expired holds to take off the shelf); cleared by the item's next scan there.
    off_shelf_pending BIGINT NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (title_id, seq)
);
CREATE INDEX holds_title ON holds(title_id, status);
CREATE INDEX holds_card ON holds(card_number);
CREATE INDEX holds_pickup ON holds(pickup_branch, status);
-- Rule H11: one active hold per patron per title.
CREATE UNIQUE INDEX holds_one_active_per_title ON holds(card_number, title_id)
    WHERE status IN ('provisional', 'confirmed', 'in_transit', 'awaiting_notice', 'ready');
-- An item is held by at most one hold.
CREATE UNIQUE INDEX holds_one_per_item ON holds(barcode)
    WHERE status IN ('in_transit', 'awaiting_notice', 'ready');

-- The per-patron guard (L3, H11): checkouts and hold placements of one patron take turns.
CREATE TABLE patron_locks (
    card_number TEXT PRIMARY KEY,
    version     BIGINT NOT NULL DEFAULT 0
);

-- Rule S3: every staff action with who, when and where. The subject names an item or a
-- hold, never the patron of a loan (V1).
CREATE TABLE staff_actions (
    action_id TEXT PRIMARY KEY,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    branch    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX staff_actions_at ON staff_actions(at);

-- Catalog: titles (bibliographic records) and items (copies), rule M1.
CREATE TABLE titles (
    title_id      TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    title_reading TEXT NOT NULL DEFAULT '',
    author        TEXT NOT NULL DEFAULT '',
    publisher     TEXT NOT NULL DEFAULT '',
    year          INTEGER,
    isbn          TEXT NOT NULL DEFAULT '',
    material_type TEXT NOT NULL,
    aliases       TEXT NOT NULL DEFAULT '',
    source_id     TEXT UNIQUE,
    created_at    TEXT NOT NULL
);

CREATE TABLE items (
    barcode     TEXT PRIMARY KEY,
    title_id    TEXT NOT NULL REFERENCES titles(title_id),
    branch      TEXT NOT NULL,
    call_number TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'available',
    due_date    TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX items_title ON items(title_id);
CREATE INDEX titles_created ON titles(created_at);

-- The catalogue change sequence (ARCHITECTURE.md "Search index"): every write that changes
-- what search shows of a title takes the next numbers from catalog_state in its transaction
-- and stores them on the title; the search index records the highest number it fully holds
-- (its watermark) and catches up from there. SQLite has one writer at a time, so commit
-- order is the sequence order.
ALTER TABLE titles ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
-- Existing titles: distinct numbers in row order.
UPDATE titles SET change_seq = rowid;
CREATE INDEX titles_change_seq ON titles(change_seq);

CREATE TABLE catalog_state (
    id         INTEGER PRIMARY KEY,
    change_seq INTEGER NOT NULL
);
INSERT INTO catalog_state (id, change_seq) SELECT 1, COALESCE(MAX(change_seq), 0) FROM titles;

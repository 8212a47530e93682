-- The catalogue change sequence (ARCHITECTURE.md "Search index"): every write that changes
-- what search shows of a title takes the next numbers from catalog_state in its transaction
-- and stores them on the title; the search index records the highest number it fully holds
-- (its watermark) and catches up from there. The row lock on catalog_state makes commit
-- order the sequence order.
ALTER TABLE titles ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0;
-- Existing titles: distinct numbers in creation order.
UPDATE titles SET change_seq = numbered.seq
FROM (SELECT title_id, ROW_NUMBER() OVER (ORDER BY created_at, title_id) AS seq FROM titles) AS numbered
WHERE titles.title_id = numbered.title_id;
CREATE INDEX titles_change_seq ON titles(change_seq);

CREATE TABLE catalog_state (
    id         INTEGER PRIMARY KEY,
    change_seq BIGINT NOT NULL
);
INSERT INTO catalog_state (id, change_seq) SELECT 1, COALESCE(MAX(change_seq), 0) FROM titles;

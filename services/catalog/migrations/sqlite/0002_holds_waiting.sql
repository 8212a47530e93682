-- Holds waiting on a title, as circulation reports it with item status events (rule H1's
-- button and the title listing).
ALTER TABLE titles ADD COLUMN holds_waiting INTEGER NOT NULL DEFAULT 0;

-- The versions of circulation's item status events last applied (ARCHITECTURE.md "Versions
-- of a copy's events"): an event changes an item's status and due date only with a higher
-- item version, and a title's holds waiting only with a higher holds version; an older or
-- equal one is acknowledged and ignored. 0: nothing versioned applied yet (rows and events
-- from before versions existed).
ALTER TABLE items ADD COLUMN status_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE titles ADD COLUMN holds_version BIGINT NOT NULL DEFAULT 0;

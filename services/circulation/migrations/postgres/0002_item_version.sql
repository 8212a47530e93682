-- The version of each copy's state as its events tell it (ARCHITECTURE.md "Versions of a
-- copy's events"): incremented, in the transaction that writes an item's ItemStatusChanged,
-- by the UPDATE that also reads the state the event carries, so it is taken under the row's
-- lock and commit order is version order. Consumers apply only a higher version than the
-- one they applied last. Rows from before start at 0, and their first event carries 1.
ALTER TABLE items ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

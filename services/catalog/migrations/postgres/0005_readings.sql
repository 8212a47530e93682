-- Readings (issue 10): the author's reading beside the title's, and where the readings came
-- from: '' none, 'given' (the record or the admin API carried the title's reading),
-- 'generated' (morphological analysis with IPADIC, `src/readings.rs`), so that a tool can
-- regenerate the generated ones after a dictionary change and never touch the others.
ALTER TABLE titles ADD COLUMN author_reading TEXT NOT NULL DEFAULT '';
ALTER TABLE titles ADD COLUMN reading_source TEXT NOT NULL DEFAULT '';

-- Inputs (a JSON object of strings) given when a connect link was created; when a
-- connect attempt finished and how the browser SDK learnt of it (reported once).
ALTER TABLE connect_links ADD COLUMN inputs TEXT NOT NULL DEFAULT '{}';
ALTER TABLE connect_sessions ADD COLUMN finished_at BIGINT;
ALTER TABLE connect_sessions ADD COLUMN reported_by TEXT CHECK (reported_by IN ('message', 'poll'));

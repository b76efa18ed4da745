-- The schema-parity test found that SQLite's webhook_deliveries has no foreign key on
-- project_id. Deliveries already go with their project through events and endpoints
-- (both ON DELETE CASCADE), so the extra key is dropped here rather than rebuilding the
-- SQLite table, which would cascade-delete the delivery log while copying it.
ALTER TABLE webhook_deliveries DROP CONSTRAINT IF EXISTS webhook_deliveries_project_id_fkey;

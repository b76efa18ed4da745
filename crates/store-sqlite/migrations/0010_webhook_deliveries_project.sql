-- Kept in step with PostgreSQL's 0009 (which drops a foreign key SQLite never had).
SELECT 1;

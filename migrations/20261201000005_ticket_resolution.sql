-- Tickets are closed by a person through ingest-api
-- (POST /api/tickets/{id}/resolve), always with a reason: who closed it
-- and why stay on the row, beside resolved_at.
ALTER TABLE tickets ADD COLUMN resolution TEXT, ADD COLUMN resolved_by TEXT;

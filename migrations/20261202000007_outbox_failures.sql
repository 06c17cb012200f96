-- An outbox row the broker would not route (no queue bound: a retry tier or
-- a consumer's queue deleted) is retried on its own with backoff instead of
-- failing its batch every cycle, then parked on the dead-letter exchange
-- with reason `unroutable` (broker::OutboxRelay).
ALTER TABLE outbox
    ADD COLUMN failures   INT NOT NULL DEFAULT 0, -- unroutable publishes so far
    ADD COLUMN not_before TIMESTAMPTZ,            -- held back until then; NULL: publish now
    ADD COLUMN last_error TEXT;

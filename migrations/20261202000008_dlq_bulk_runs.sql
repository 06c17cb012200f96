-- Bulk actions on a DLQ selection (retry it, or delete it) run batch by
-- batch in the background. Each batch advances its run's row in the batch's
-- own transaction, so the progress a page shows is exactly what has
-- committed, read the same from every dlq-admin replica, and kept across a
-- restart. A run whose process went away stays unfinished; its page says it
-- stalled (no batch for a while), and starting it again takes what is left.
CREATE TABLE dlq_bulk_runs (
    run_id        UUID PRIMARY KEY,            -- also the audit rows' request_id
    action        TEXT NOT NULL CHECK (action IN ('bulk_retry', 'bulk_delete')),
    actor         TEXT NOT NULL,
    reason        TEXT NOT NULL,
    selection     JSONB NOT NULL,              -- the filter, or how many ids
    matched       BIGINT NOT NULL,             -- the dry-run count at the start
    done          BIGINT NOT NULL DEFAULT 0,   -- items changed so far
    batches       INT NOT NULL DEFAULT 0,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ,
    limit_reached BOOLEAN NOT NULL DEFAULT false,
    error         TEXT
);
CREATE INDEX dlq_bulk_runs_started_idx ON dlq_bulk_runs (started_at DESC);

ALTER TABLE admin_audit DROP CONSTRAINT admin_audit_action_check;
ALTER TABLE admin_audit ADD CONSTRAINT admin_audit_action_check
    CHECK (action IN ('retry', 'delete', 'bulk_retry', 'bulk_delete', 'purge'));

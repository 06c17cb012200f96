-- dlq-admin: poison messages imported from jobs.dlq, the job messages seen
-- there, the admin audit trail, and the error fingerprint used to group the
-- DLQ. Postgres is the DLQ's source of truth: dlq-admin consumes every
-- message from jobs.dlq and records it here before acking it.

-- Messages that reached jobs.dlq with no DLQ job row behind them: bodies no
-- worker could parse, unknown jobs, and messages the broker dead-lettered by
-- itself (quorum x-delivery-limit). They live only here once imported.
CREATE TABLE dlq_poison (
    item_id       UUID PRIMARY KEY,              -- UUIDv7
    status        TEXT NOT NULL DEFAULT 'DLQ' CHECK (status IN ('DLQ', 'DELETED')),
    reason        TEXT NOT NULL,                 -- x-dlq-reason (not_json, unknown_job, ...) or the broker's x-death reason (delivery_limit, ...)
    error_message TEXT,                          -- x-error, when the producer said more
    job_id        UUID,                          -- x-job-id or the body's job_id, when either names one (no FK: the job may not exist)
    document_id   TEXT,
    source_queue  TEXT,                          -- the queue it was dead-lettered from, when known
    payload       BYTEA NOT NULL,
    headers       JSONB NOT NULL DEFAULT '{}'::jsonb,
    content_type  TEXT,
    content_hash  BYTEA NOT NULL,                -- SHA-256 of body and headers: recognises a redelivered import
    dlq_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
-- Listing and retention: only live items, newest first.
CREATE INDEX dlq_poison_live_idx ON dlq_poison (dlq_at DESC, item_id DESC) WHERE status = 'DLQ';
CREATE INDEX dlq_poison_content_hash_idx ON dlq_poison (content_hash);

-- A job's own dead-letter message, seen on jobs.dlq for its DLQ row (the
-- row came first, in the worker's transaction; this records the queue side).
CREATE TABLE dlq_job_messages (
    job_id  UUID PRIMARY KEY REFERENCES jobs (job_id),
    attempt INT,
    reason  TEXT,
    seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every admin change, written in the transaction that makes it.
CREATE TABLE admin_audit (
    id            BIGSERIAL PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor         TEXT NOT NULL,                 -- token name (never the token), or retention-sweep
    action        TEXT NOT NULL CHECK (action IN ('retry', 'delete', 'bulk_retry', 'purge')),
    reason        TEXT NOT NULL,
    request_id    UUID NOT NULL,                 -- groups the batches of one bulk request
    target        TEXT,                          -- job or item id; fingerprint for a group
    filter        JSONB,                         -- the selection of a bulk retry or purge
    matched       INT NOT NULL DEFAULT 0,        -- items the batch selected
    affected      INT NOT NULL DEFAULT 0,        -- items it changed
    status_before TEXT,
    status_after  TEXT,
    job_ids       UUID[] NOT NULL DEFAULT '{}'   -- what a batch changed
);
CREATE INDEX admin_audit_action_idx ON admin_audit (action, id DESC);

-- The DLQ, newest first (listing, keyset pagination, retention).
CREATE INDEX jobs_dlq_idx ON jobs ((coalesce(dlq_at, updated_at)) DESC, job_id DESC) WHERE status = 'DLQ';

-- An error message with what varies between occurrences taken out: paths
-- and URLs (first, so the ids inside them go with them), UUIDs, quoted
-- values, long hex strings, numbers. Two failures
-- with the same cause then read the same.
CREATE FUNCTION dlq_error_template(message TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(btrim(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(
        regexp_replace(coalesce(message, ''),
            '[^[:space:]"''(),;<>{}]*/[^[:space:]"''(),;<>{}]*[^[:space:]"''(),;<>{}:.]', '<path>', 'g'),
            '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g'),
            '"[^"]*"', '<str>', 'g'),
            '\m(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\M', '<hex>', 'g'),
            '[0-9]+([.,][0-9]+)*', '<n>', 'g'),
            '[[:space:]]+', ' ', 'g')), 300)
$$;

-- The group an error belongs to: its kind, its stage and its template.
CREATE FUNCTION dlq_fingerprint(kind TEXT, stage TEXT, message TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(md5(coalesce(kind, '') || chr(31) || coalesce(stage, '') || chr(31) || dlq_error_template(message)), 16)
$$;

-- Jobs, their history and the transactional outbox (DESIGN.md, "Delivery guarantees").

CREATE TABLE jobs (
    job_id           UUID PRIMARY KEY,           -- UUIDv7: time-ordered, so it doubles as the keyset cursor
    document_id      TEXT NOT NULL,
    filename         TEXT NOT NULL,
    blob_path        TEXT NOT NULL,
    file_size        BIGINT NOT NULL CHECK (file_size > 0),
    priority         SMALLINT NOT NULL CHECK (priority IN (1, 5, 10)),
    tags             JSONB NOT NULL DEFAULT '{}'::jsonb,
    status           TEXT NOT NULL CHECK (status IN ('QUEUED','PROCESSING','COMPLETED','FAILED','RETRYING','DLQ','DELETED')),
    attempt          INT NOT NULL DEFAULT 0,     -- attempts started so far
    retry_count      INT NOT NULL DEFAULT 0,     -- retries scheduled so far
    crash_count      INT NOT NULL DEFAULT 0,     -- attempts whose worker died holding the lease
    max_retries      INT NOT NULL,
    error_message    TEXT,
    error_stage      TEXT,
    idempotency_key  TEXT,
    request_hash     BYTEA NOT NULL,             -- SHA-256 of the normalised request, for idempotency conflicts
    trace_id         TEXT,
    traceparent      TEXT,                       -- W3C context of the submission, to continue its trace on replay
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    dlq_at           TIMESTAMPTZ
);

CREATE UNIQUE INDEX jobs_idempotency_key_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Listing: newest first, optionally by status, priority or document.
CREATE INDEX jobs_status_job_id_idx ON jobs (status, job_id DESC);
CREATE INDEX jobs_priority_job_id_idx ON jobs (priority, job_id DESC);
-- Also serves the implicit idempotency check on document_id within a window.
CREATE INDEX jobs_document_id_job_id_idx ON jobs (document_id, job_id DESC);
-- The lease reaper looks only at running jobs.
CREATE INDEX jobs_processing_lease_idx ON jobs (lease_expires_at) WHERE status = 'PROCESSING';

-- Every status change, one row each (DESIGN.md, "Job lifecycle").
CREATE TABLE job_events (
    id          BIGSERIAL PRIMARY KEY,
    job_id      UUID NOT NULL REFERENCES jobs (job_id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    detail      JSONB NOT NULL DEFAULT '{}'::jsonb,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job_id_idx ON job_events (job_id, id);

-- Per-attempt stage timings, written by workers, read by the status API.
CREATE TABLE job_stages (
    job_id          UUID NOT NULL REFERENCES jobs (job_id),
    attempt         INT NOT NULL,
    seq             SMALLINT NOT NULL,           -- position in the pipeline
    stage           TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    duration_ms     DOUBLE PRECISION NOT NULL,
    items_processed BIGINT,
    bytes_processed BIGINT,
    error           TEXT,
    PRIMARY KEY (job_id, attempt, seq)
);

-- Messages committed with the rows that caused them; a relay publishes them
-- with publisher confirms and deletes them only once confirmed.
CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    exchange    TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    payload     BYTEA NOT NULL,
    headers     JSONB NOT NULL DEFAULT '{}'::jsonb,
    expiration_ms BIGINT,                    -- per-message TTL (retry jitter)
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

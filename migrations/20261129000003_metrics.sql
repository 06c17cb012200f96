-- metrics-tracker: raw execution traces (kept for RAW_RETENTION_HOURS) and
-- per-minute rollups (kept for ROLLUP_RETENTION_DAYS) that reports read
-- instead of scanning raw rows. Written only by metrics-tracker, from the
-- execution events workers publish on docflow.events.
--
-- No foreign key to jobs: the event stream is the input here, and raw rows
-- outlive or predate job rows (retention, replays, another database).

-- One row per job attempt. The primary key is what makes a redelivered event
-- a no-op: rollups are updated only when this insert inserted, in the same
-- transaction.
CREATE TABLE metric_executions (
    job_id            UUID NOT NULL,
    attempt           INT NOT NULL,
    document_id       TEXT NOT NULL,
    priority          SMALLINT NOT NULL CHECK (priority IN (1, 5, 10)),
    outcome           TEXT NOT NULL CHECK (outcome IN ('completed', 'failed', 'retrying', 'dlq')),
    error_message     TEXT,
    error_stage       TEXT,
    worker_id         TEXT NOT NULL,
    submitted_at      TIMESTAMPTZ NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ NOT NULL,
    queue_wait_ms     DOUBLE PRECISION NOT NULL,
    total_duration_ms DOUBLE PRECISION NOT NULL,
    trace_id          TEXT,
    recorded_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, attempt)
);
-- Listing newest first with a keyset cursor (a backward scan serves DESC),
-- and the retention sweep (oldest first).
CREATE INDEX metric_executions_finished_idx ON metric_executions (finished_at, job_id, attempt);
CREATE INDEX metric_executions_outcome_finished_idx ON metric_executions (outcome, finished_at, job_id, attempt);

-- Every stage of every attempt, deleted with its attempt.
CREATE TABLE metric_stage_timings (
    job_id          UUID NOT NULL,
    attempt         INT NOT NULL,
    seq             SMALLINT NOT NULL,
    stage           TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
    started_at      TIMESTAMPTZ NOT NULL,
    offset_ms       DOUBLE PRECISION NOT NULL,
    duration_ms     DOUBLE PRECISION NOT NULL,
    items_processed BIGINT NOT NULL,
    bytes_processed BIGINT NOT NULL,
    error           TEXT,
    PRIMARY KEY (job_id, attempt, seq),
    FOREIGN KEY (job_id, attempt) REFERENCES metric_executions (job_id, attempt) ON DELETE CASCADE
);

-- Per minute (of the attempt's finished_at) and stage. `sketch` is an HDR
-- histogram of durations in nanoseconds, 2 significant figures, in the V2
-- serialisation: histograms merge losslessly, so any window's percentiles
-- come from merging its minutes. count/sum/min/max are exact.
CREATE TABLE metric_stage_rollups (
    bucket        TIMESTAMPTZ NOT NULL,
    stage         TEXT NOT NULL,
    count         BIGINT NOT NULL DEFAULT 0,
    failures      BIGINT NOT NULL DEFAULT 0,
    sum_ms        DOUBLE PRECISION NOT NULL DEFAULT 0,
    min_ms        DOUBLE PRECISION,
    max_ms        DOUBLE PRECISION,
    -- Sum over timings of (stage duration / attempt duration * 100): divided
    -- by count it is the stage's mean share of an attempt.
    sum_share_pct DOUBLE PRECISION NOT NULL DEFAULT 0,
    sketch        BYTEA,
    PRIMARY KEY (bucket, stage)
);

-- Per minute, priority and outcome: whole-attempt durations, and queue wait
-- (submit to start) of first attempts (later attempts' waits include their
-- retry back-off, which is not queueing).
CREATE TABLE metric_execution_rollups (
    bucket        TIMESTAMPTZ NOT NULL,
    priority      SMALLINT NOT NULL,
    outcome       TEXT NOT NULL,
    count         BIGINT NOT NULL DEFAULT 0,
    sum_total_ms  DOUBLE PRECISION NOT NULL DEFAULT 0,
    min_total_ms  DOUBLE PRECISION,
    max_total_ms  DOUBLE PRECISION,
    total_sketch  BYTEA,
    wait_count    BIGINT NOT NULL DEFAULT 0,
    sum_wait_ms   DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_wait_ms   DOUBLE PRECISION,
    wait_sketch   BYTEA,
    PRIMARY KEY (bucket, priority, outcome)
);

-- Stage timings as one row per attempt instead of one row per stage
-- (BENCHMARKS.md, lever 7). A job wrote sixteen stage rows: eight in
-- job_stages, eight in metric_stage_timings, each with its index entry,
-- its WAL record and its foreign-key check (a query of its own, run by the
-- constraint trigger), which made them the largest share of the rows
-- Postgres wrote per job. They are read only a whole attempt at a time (a
-- job's status, an execution trace) or aggregated by stage across
-- attempts, so an array in the attempt's row holds them as well. Views
-- under the old names unnest them, for readers and ad-hoc queries.

CREATE DOMAIN stage_status AS TEXT CHECK (VALUE IN ('succeeded', 'failed'));

-- One stage of one attempt, in pipeline order inside its array.
CREATE TYPE stage_timing AS (
    seq             SMALLINT,                -- position in the pipeline
    stage           TEXT,
    status          stage_status,
    started_at      TIMESTAMPTZ,
    offset_ms       DOUBLE PRECISION,        -- start, relative to the attempt's start
    duration_ms     DOUBLE PRECISION,
    items_processed BIGINT,
    bytes_processed BIGINT,
    error           TEXT
);

-- Per-attempt stage timings, written by workers with the attempt's outcome,
-- read by the status API and the console.
CREATE TABLE job_attempts (
    job_id  UUID NOT NULL REFERENCES jobs (job_id),
    attempt INT NOT NULL,
    stages  stage_timing[] NOT NULL,
    PRIMARY KEY (job_id, attempt)
);

INSERT INTO job_attempts (job_id, attempt, stages)
SELECT job_id, attempt,
       array_agg(ROW(seq, stage, status, started_at, NULL, duration_ms, items_processed, bytes_processed, error)::stage_timing
                 ORDER BY seq)
FROM job_stages
GROUP BY job_id, attempt;

DROP TABLE job_stages;

CREATE VIEW job_stages AS
SELECT a.job_id, a.attempt, s.seq, s.stage, s.status::text AS status, s.started_at, s.duration_ms,
       s.items_processed, s.bytes_processed, s.error
FROM job_attempts a CROSS JOIN LATERAL unnest(a.stages) AS s;

-- metrics-tracker's raw traces: an attempt's stages in its execution row
-- (deleted with it by retention, as the cascade did before).
ALTER TABLE metric_executions ADD COLUMN stages stage_timing[] NOT NULL DEFAULT '{}';

UPDATE metric_executions e SET stages = t.stages
FROM (
    SELECT job_id, attempt,
           array_agg(ROW(seq, stage, status, started_at, offset_ms, duration_ms, items_processed, bytes_processed,
                         error)::stage_timing ORDER BY seq) AS stages
    FROM metric_stage_timings
    GROUP BY job_id, attempt
) t
WHERE e.job_id = t.job_id AND e.attempt = t.attempt;

DROP TABLE metric_stage_timings;

CREATE VIEW metric_stage_timings AS
SELECT e.job_id, e.attempt, s.seq, s.stage, s.status::text AS status, s.started_at, s.offset_ms, s.duration_ms,
       s.items_processed, s.bytes_processed, s.error
FROM metric_executions e CROSS JOIN LATERAL unnest(e.stages) AS s;

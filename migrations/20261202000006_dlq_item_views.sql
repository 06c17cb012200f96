-- What a DLQ item is, said once: a job row with its last move into DLQ, or a
-- poison message. The DLQ list, its groups, bulk retries and dry runs all
-- filter these views with one WHERE clause (job-store `dlq::filtered!`), so
-- their statements are plain text that sqlx checks at build time. Postgres
-- pushes the callers' predicates (status = 'DLQ', job_id = ..) into the
-- views, so the partial DLQ indexes still serve them.

-- A job as a DLQ item: what failed (`error_kind`) and why it was parked
-- (`reason`) come from the detail the worker wrote on its last DLQ event.
-- `dlq_at` is set with the status by the worker; `updated_at` only guards
-- against a row written some other way.
CREATE VIEW dlq_job_items AS
SELECT 'job'::text AS kind,
       j.job_id AS id,
       j.status,
       j.job_id,
       j.document_id,
       j.filename,
       j.priority,
       coalesce(ev.detail->>'error_kind', ev.detail->>'reason', 'unknown') AS error_kind,
       j.error_message,
       j.error_stage,
       ev.detail->>'reason' AS reason,
       j.retry_count,
       j.attempt,
       coalesce(j.dlq_at, j.updated_at) AS dlq_at,
       dlq_fingerprint(coalesce(ev.detail->>'error_kind', ev.detail->>'reason', 'unknown'), j.error_stage, j.error_message)
           AS fingerprint
FROM jobs j
LEFT JOIN LATERAL (
    SELECT e.detail FROM job_events e WHERE e.job_id = j.job_id AND e.to_status = 'DLQ' ORDER BY e.id DESC LIMIT 1
) ev ON true;

-- A poison message as a DLQ item. Stage and priority belong to jobs: NULL
-- here, so a filter on either leaves poison items out.
CREATE VIEW dlq_poison_items AS
SELECT 'poison'::text AS kind,
       p.item_id AS id,
       p.status,
       p.job_id,
       p.document_id,
       NULL::text AS filename,
       NULL::smallint AS priority,
       'poison'::text AS error_kind,
       p.error_message,
       NULL::text AS error_stage,
       p.reason,
       NULL::int AS retry_count,
       NULL::int AS attempt,
       p.dlq_at,
       dlq_fingerprint('poison', p.reason, p.error_message) AS fingerprint,
       p.payload
FROM dlq_poison p;

-- Both, as one list.
CREATE VIEW dlq_items AS
SELECT kind, id, status, job_id, document_id, filename, priority, error_kind, error_message, error_stage, reason,
       retry_count, attempt, dlq_at, fingerprint, NULL::bytea AS payload
FROM dlq_job_items
UNION ALL
SELECT kind, id, status, job_id, document_id, filename, priority, error_kind, error_message, error_stage, reason,
       retry_count, attempt, dlq_at, fingerprint, payload
FROM dlq_poison_items;

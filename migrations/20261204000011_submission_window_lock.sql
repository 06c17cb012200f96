-- The submission's dedup-window check in one statement (BENCHMARKS.md,
-- lever 8). A submission without an idempotency key looks for an earlier
-- job of its document within DEDUP_WINDOW_SECONDS under an advisory lock
-- per document, so that two concurrent submissions cannot both miss each
-- other. The lookup must see what the lock's last holder committed, and
-- under READ COMMITTED a statement sees only what was committed before
-- the statement started, which was before it waited for the lock. So the
-- lock and the lookup were two statements in an explicit transaction:
-- BEGIN, lock, insert, COMMIT, four round trips for every submission.
--
-- A VOLATILE function takes a fresh snapshot for each statement it runs,
-- so a lookup that runs inside the function after the lock sees the last
-- holder's commit. The submission calls this function from its insert and
-- runs as one autocommitted statement. The lock is the same one (same key)
-- that the two-statement form took, so replicas of either version exclude
-- each other during a rolling deploy. It is held until the statement
-- commits.

-- The newest job of `document` created within the last `window_secs`, or
-- NULL, seen after taking the document's transaction-level advisory lock.
CREATE FUNCTION docflow_lock_document_window(document TEXT, window_secs DOUBLE PRECISION) RETURNS UUID
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('docflow.document:' || document, 0));
    RETURN (SELECT job_id FROM jobs
            WHERE document_id = document AND created_at > now() - make_interval(secs => window_secs)
            ORDER BY job_id DESC LIMIT 1);
END
$$;

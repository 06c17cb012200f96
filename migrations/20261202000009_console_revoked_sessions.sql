-- Console sessions ended by logging out, kept until they would have expired
-- anyway: a copy of the session cookie is refused from then on, by every
-- dlq-admin replica (the cookie itself is stateless and would otherwise
-- stay valid for CONSOLE_SESSION_HOURS).
CREATE TABLE console_revoked_sessions (
    session_hash TEXT PRIMARY KEY,           -- SHA-256 (hex) of the session's random id
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_revoked_sessions_expires_idx ON console_revoked_sessions (expires_at);

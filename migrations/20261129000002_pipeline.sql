-- Pipeline outputs (DESIGN.md, "The eight stages": criteria_detection,
-- ticket_generation, storage). Written by workers through crates/pipeline.

-- One result per job: what the pipeline found in the document. The storage
-- stage upserts it, so a retried job replaces its earlier attempt's row.
-- `result` holds the full result document (the same JSON as the blob at
-- `result_path`); the other columns are the parts queried directly.
CREATE TABLE document_results (
    job_id                    UUID PRIMARY KEY REFERENCES jobs (job_id) ON DELETE CASCADE,
    document_id               TEXT NOT NULL,
    attempt                   INT NOT NULL,
    document_type             TEXT NOT NULL CHECK (document_type IN
                                  ('invoice', 'credit_note', 'receipt', 'contract', 'bank_statement', 'other')),
    classification_confidence DOUBLE PRECISION NOT NULL CHECK (classification_confidence BETWEEN 0 AND 1),
    mime_type                 TEXT NOT NULL,
    sha256                    TEXT NOT NULL,   -- hex, of the document's bytes
    text_sha256               TEXT NOT NULL,   -- hex, of the extracted text
    page_count                INT NOT NULL,
    needs_ocr                 BOOLEAN NOT NULL,
    supplier                  TEXT,
    supplier_key              TEXT,            -- normalised supplier name (lower case, no legal form)
    invoice_number            TEXT,
    invoice_key               TEXT,            -- normalised invoice number (alphanumerics, upper case)
    issue_date                DATE,
    due_date                  DATE,
    total_cents               BIGINT,          -- money in minor units, never floating point
    currency                  TEXT,
    findings                  INT NOT NULL DEFAULT 0,
    result_path               TEXT NOT NULL,   -- blob store path of the result JSON
    result                    JSONB NOT NULL,
    created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The duplicate rule: an earlier result with the same supplier and invoice
-- number. Partial, since most documents that are not invoices have neither.
CREATE INDEX document_results_supplier_invoice_idx
    ON document_results (supplier_key, invoice_key)
    WHERE supplier_key IS NOT NULL AND invoice_key IS NOT NULL;
CREATE INDEX document_results_document_id_idx ON document_results (document_id);

-- Findings that need a person. At most one per (job, rule): re-running a
-- job (retry, redelivery) inserts with ON CONFLICT DO NOTHING.
CREATE TABLE tickets (
    ticket_id   BIGSERIAL PRIMARY KEY,
    job_id      UUID NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    attempt     INT NOT NULL,                  -- the attempt that opened it
    rule        TEXT NOT NULL,
    severity    TEXT NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    message     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'IN_PROGRESS', 'RESOLVED', 'DISMISSED')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolved_at TIMESTAMPTZ,
    UNIQUE (job_id, rule)
);

-- Work lists: open tickets, oldest first.
CREATE INDEX tickets_status_ticket_id_idx ON tickets (status, ticket_id);

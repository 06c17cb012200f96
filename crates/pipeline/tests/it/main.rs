//! Integration tests: the stages over the sample documents in `samples/`,
//! against a real Postgres (a fresh migrated database per test, from
//! `test_support::TestDb`) and a local-directory blob store; and the
//! document stages over the shared e-invoice corpus (`corpus`).

mod corpus;
mod corpus_floor;
mod pdfgen;
mod support;

mod analysis;
mod einvoice;
mod failures;
mod layout;
mod limits;
mod pipeline_runs;
mod stages;

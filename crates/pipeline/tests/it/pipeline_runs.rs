//! The standard pipeline end to end: results, tickets, duplicates.

use async_trait::async_trait;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use pipeline::stages::names;
use pipeline::{
    DocumentType, Finding, Pipeline, PipelineConfig, ResultDocument, Severity, Stage, StageContext, StageError,
    StageReport, StageStatus,
};
use uuid::Uuid;

use crate::support::{World, sample, sha256_hex, standard};

#[derive(sqlx::FromRow, Debug)]
struct ResultRow {
    attempt: i32,
    document_type: String,
    sha256: String,
    page_count: i32,
    needs_ocr: bool,
    supplier: Option<String>,
    supplier_key: Option<String>,
    invoice_number: Option<String>,
    invoice_key: Option<String>,
    total_cents: Option<i64>,
    currency: Option<String>,
    findings: i32,
    result_path: String,
    result: sqlx::types::Json<ResultDocument>,
}

async fn result_row(world: &World, job_id: Uuid) -> Option<ResultRow> {
    sqlx::query_as::<_, ResultRow>(
        "SELECT attempt, document_type, sha256, page_count, needs_ocr, supplier, supplier_key, invoice_number, \
         invoice_key, total_cents, currency, findings, result_path, result FROM document_results WHERE job_id = $1",
    )
    .bind(job_id)
    .fetch_optional(&world.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn known_invoice_runs_all_eight_stages_and_stores_its_result() {
    let world = World::new().await;
    let pipeline = standard();
    assert_eq!(pipeline.stage_names(), names::ALL);
    let doc = world.job("invoice_en.pdf").await;
    let job_id = doc.job_id;
    let mut ctx = world.context(&pipeline, doc);
    let run = world.run(&pipeline, &mut ctx).await;

    assert_eq!(run.result, Ok(()));
    let stages: Vec<_> = run.outcomes.iter().map(|o| (o.seq, o.stage, o.status)).collect();
    let expected: Vec<_> = names::ALL.iter().enumerate().map(|(i, n)| (i, *n, StageStatus::Succeeded)).collect();
    assert_eq!(stages, expected);
    assert!(run.outcomes.iter().all(|o| o.error.is_none()));
    assert_eq!(run.outcomes[0].bytes_processed, sample("invoice_en.pdf").len() as u64);
    assert_eq!(run.outcomes[2].document_type.as_deref(), Some("invoice"));
    assert_eq!(run.outcomes[4].items_processed, 10, "all ten fields found");

    // Criteria: the total is above 10,000; nothing else is wrong.
    let criteria = ctx.criteria.as_ref().unwrap();
    assert_eq!(
        criteria.findings,
        vec![Finding {
            rule: "high_total".into(),
            severity: Severity::High,
            message: "total 14400.00 EUR is above the threshold of 10000.00".into(),
            needs_human: true,
        }]
    );
    assert_eq!(criteria.duplicate_of, None);
    assert_eq!(world.tickets(job_id).await, vec![("high_total".to_owned(), "high".to_owned())]);

    // The result row and the result blob hold the same document.
    let row = result_row(&world, job_id).await.expect("result row");
    assert_eq!(row.attempt, 1);
    assert_eq!(row.document_type, "invoice");
    assert_eq!(row.sha256, sha256_hex(&sample("invoice_en.pdf")));
    assert_eq!((row.page_count, row.needs_ocr), (1, false));
    assert_eq!(row.supplier.as_deref(), Some("Brightline Software Ltd"));
    assert_eq!(row.supplier_key.as_deref(), Some("brightlinesoftware"));
    assert_eq!(row.invoice_number.as_deref(), Some("BL-2026-117"));
    assert_eq!(row.invoice_key.as_deref(), Some("BL2026117"));
    assert_eq!(row.total_cents, Some(1_440_000));
    assert_eq!(row.currency.as_deref(), Some("EUR"));
    assert_eq!(row.findings, 1);
    assert_eq!(row.result_path, format!("results/{job_id}.json"));

    let blob = world.blobs.get(&Path::from(row.result_path.as_str())).await.unwrap().bytes().await.unwrap();
    let stored: ResultDocument = serde_json::from_slice(&blob).unwrap();
    assert_eq!(stored, row.result.0);
    assert_eq!(stored.job_id, job_id);
    assert_eq!(stored.classification.document_type, DocumentType::Invoice);
    assert_eq!(stored.fields, ctx.analysis.as_ref().unwrap().fields);
    assert_eq!(stored.text.sha256, ctx.extraction.as_ref().unwrap().text_sha256);
    assert_eq!(stored.page_count, 1);
    assert_eq!(ctx.storage.as_ref().unwrap().json_bytes, blob.len() as u64);
}

#[tokio::test]
async fn running_a_job_twice_keeps_one_ticket_per_rule_and_one_result() {
    let world = World::new().await;
    let pipeline = standard();
    // invoice_de.txt: no VAT id (a ticket) and, by 15 March, overdue (a
    // finding without a ticket).
    let doc = world.job("invoice_de.txt").await;
    let job_id = doc.job_id;

    let mut first = world.context(&pipeline, doc.clone());
    assert!(world.run(&pipeline, &mut first).await.succeeded());
    let rules: Vec<_> = first.criteria.as_ref().unwrap().findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, vec!["missing_vat_id", "overdue"]);
    let drafts: Vec<_> = first.tickets.as_ref().unwrap().tickets.iter().map(|t| t.rule.as_str()).collect();
    assert_eq!(drafts, vec!["missing_vat_id"], "the overdue finding asks for no person");

    // The redelivered or retried job runs every stage again.
    let mut retried_doc = doc;
    retried_doc.attempt = 2;
    let mut second = world.context(&pipeline, retried_doc);
    assert!(world.run(&pipeline, &mut second).await.succeeded());
    assert_eq!(second.tickets, first.tickets, "the retry asks for the same ticket");

    assert_eq!(world.tickets(job_id).await, vec![("missing_vat_id".to_owned(), "medium".to_owned())]);
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM document_results").fetch_one(&world.db.pool).await.unwrap();
    assert_eq!(count, 1);
    assert_eq!(result_row(&world, job_id).await.unwrap().attempt, 2, "the retry's result replaced the first");
    // Not a duplicate of itself.
    assert_eq!(second.criteria.as_ref().unwrap().duplicate_of, None);
}

#[tokio::test]
async fn the_same_invoice_in_a_second_job_is_a_possible_duplicate() {
    let world = World::new().await;
    let pipeline = standard();
    let first = world.job("rechnung_de.pdf").await;
    let mut ctx = world.context(&pipeline, first.clone());
    assert!(world.run(&pipeline, &mut ctx).await.succeeded());
    assert!(world.tickets(first.job_id).await.is_empty(), "a clean invoice opens no ticket");

    // Same supplier and number, uploaded again (a different file name too).
    let second = world.job_with("scan-0815.pdf", &sample("rechnung_de.pdf")).await;
    let mut ctx = world.context(&pipeline, second.clone());
    assert!(world.run(&pipeline, &mut ctx).await.succeeded());
    let criteria = ctx.criteria.as_ref().unwrap();
    assert_eq!(criteria.duplicate_of, Some(first.job_id));
    let finding = criteria.findings.iter().find(|f| f.rule == "possible_duplicate").expect("duplicate finding");
    assert_eq!(
        finding.message,
        format!("invoice RE-2026-0815 from Elektro Schmidt GmbH was already processed in job {}", first.job_id)
    );
    assert!(finding.needs_human);
    assert_eq!(world.tickets(second.job_id).await, vec![("possible_duplicate".to_owned(), "high".to_owned())]);
    assert!(world.tickets(first.job_id).await.is_empty());
}

#[tokio::test]
async fn a_different_invoice_from_the_same_supplier_is_not_a_duplicate() {
    let world = World::new().await;
    let pipeline = standard();
    let first = world.job("rechnung_de.pdf").await;
    let mut ctx = world.context(&pipeline, first);
    assert!(world.run(&pipeline, &mut ctx).await.succeeded());

    let text = "Elektro Schmidt GmbH\nUSt-IdNr.: DE136695976\nRechnung\nRechnungsnummer: RE-2026-0816\n\
                Rechnungsdatum: 09.03.2026\nGesamtbetrag: 100,00 €\n";
    let second = world.job_with("re-0816.txt", text.as_bytes()).await;
    let mut ctx = world.context(&pipeline, second);
    assert!(world.run(&pipeline, &mut ctx).await.succeeded());
    assert_eq!(ctx.criteria.as_ref().unwrap().duplicate_of, None);
}

#[tokio::test]
async fn an_image_completes_with_a_needs_ocr_ticket() {
    let world = World::new().await;
    let pipeline = standard();
    let doc = world.job("photo.png").await;
    let job_id = doc.job_id;
    let mut ctx = world.context(&pipeline, doc);
    let run = world.run(&pipeline, &mut ctx).await;
    assert_eq!(run.result, Ok(()));
    assert!(ctx.extraction.as_ref().unwrap().needs_ocr);
    assert_eq!(ctx.classification.as_ref().unwrap().document_type, DocumentType::Other);
    // Low classification confidence is a finding, but not one for a person.
    let rules: Vec<_> = ctx.criteria.as_ref().unwrap().findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, vec!["needs_ocr", "low_confidence_classification"]);
    assert_eq!(world.tickets(job_id).await, vec![("needs_ocr".to_owned(), "low".to_owned())]);
    let row = result_row(&world, job_id).await.unwrap();
    assert!(row.needs_ocr);
    assert_eq!(row.supplier, None);
}

/// A user-defined stage, inserted without touching anything else.
struct WordCount;

#[async_trait]
impl Stage for WordCount {
    fn name(&self) -> &'static str {
        "word_count"
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let words = ctx.extraction_output()?.text.split_whitespace().count();
        ctx.extensions.insert("word_count".into(), serde_json::json!(words));
        Ok(StageReport::new(words as u64, 0))
    }
}

#[tokio::test]
async fn custom_stages_can_be_inserted_and_replaced() {
    let world = World::new().await;
    let mut pipeline = standard();
    pipeline.insert_after(names::EXTRACTION, WordCount).unwrap();
    assert_eq!(
        pipeline.stage_names(),
        vec![
            "upload",
            "validation",
            "classification",
            "extraction",
            "word_count",
            "analysis",
            "criteria_detection",
            "ticket_generation",
            "storage"
        ]
    );
    assert!(pipeline.insert_before("no_such_stage", WordCount).is_err());

    let doc = world.job("invoice_en.txt").await;
    let mut ctx = world.context(&pipeline, doc);
    let run = world.run(&pipeline, &mut ctx).await;
    assert_eq!(run.result, Ok(()));
    assert_eq!(run.outcomes[4].stage, "word_count");
    let words = ctx.extensions["word_count"].as_u64().unwrap();
    assert_eq!(run.outcomes[4].items_processed, words);
    assert!(words > 50);
}

#[tokio::test]
async fn rules_can_come_from_a_file() {
    let world = World::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(
        &path,
        "[[rule]]\nid = \"big\"\nkind = \"total_above\"\nthreshold = \"1000.00\"\nseverity = \"critical\"\nneeds_human = true\n",
    )
    .unwrap();
    let pipeline = Pipeline::standard(PipelineConfig { rules_path: Some(path), ..PipelineConfig::default() }).unwrap();
    let doc = world.job("rechnung_de.pdf").await;
    let job_id = doc.job_id;
    let mut ctx = world.context(&pipeline, doc);
    assert!(world.run(&pipeline, &mut ctx).await.succeeded());
    assert_eq!(world.tickets(job_id).await, vec![("big".to_owned(), "critical".to_owned())]);

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[rule]]\nid = \"x\"\nkind = \"unknown_kind\"\nseverity = \"low\"\n").unwrap();
    let err = Pipeline::standard(PipelineConfig { rules_path: Some(bad), ..PipelineConfig::default() }).unwrap_err();
    assert!(matches!(err, pipeline::ConfigError::InvalidRules { .. }), "{err}");
    let missing = dir.path().join("missing.toml");
    let err =
        Pipeline::standard(PipelineConfig { rules_path: Some(missing), ..PipelineConfig::default() }).unwrap_err();
    assert!(matches!(err, pipeline::ConfigError::ReadRules { .. }), "{err}");
}

#[tokio::test]
async fn a_scanned_invoice_asks_for_ocr_and_review() {
    let world = World::new().await;
    let pipeline = standard();
    let doc = world.job("scanned_invoice.pdf").await;
    let job_id = doc.job_id;
    let mut ctx = world.context(&pipeline, doc);
    assert_eq!(world.run(&pipeline, &mut ctx).await.result, Ok(()));
    assert_eq!(ctx.classification.as_ref().unwrap().document_type, DocumentType::Invoice);
    assert!(ctx.extraction.as_ref().unwrap().needs_ocr);
    assert_eq!(ctx.analysis.as_ref().unwrap().fields.count(), 0);
    let rules: Vec<_> = ctx.criteria.as_ref().unwrap().findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, vec!["missing_vat_id", "missing_total", "missing_invoice_number", "needs_ocr"]);
    let tickets: Vec<_> = world.tickets(job_id).await.into_iter().map(|(rule, _)| rule).collect();
    assert_eq!(tickets, vec!["missing_total", "missing_vat_id", "needs_ocr"]);
}

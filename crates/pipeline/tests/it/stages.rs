//! Each stage on its own, on good and bad documents.

use std::sync::Arc;

use pipeline::stages::classification::Classification;
use pipeline::stages::extraction::Extraction;
use pipeline::stages::upload::Upload;
use pipeline::stages::validation::Validation;
use pipeline::{DocumentFormat, DocumentType, PipelineConfig, Stage, StageContext, StageError, kind};

use crate::support::{World, sample, sha256_hex};

/// Runs upload and validation; returns validation's result.
async fn validate(world: &World, name: &str, config: PipelineConfig) -> (StageContext, Result<(), StageError>) {
    let doc = world.job(name).await;
    let mut ctx = world.context_with(config, doc);
    Upload.run(&mut ctx).await.unwrap();
    let result = Validation.run(&mut ctx).await.map(|_| ());
    (ctx, result)
}

async fn through_extraction(world: &World, name: &str) -> StageContext {
    let doc = world.job(name).await;
    let mut ctx = world.context_with(PipelineConfig::default(), doc);
    Upload.run(&mut ctx).await.unwrap();
    Validation.run(&mut ctx).await.unwrap();
    Classification.run(&mut ctx).await.unwrap();
    Extraction.run(&mut ctx).await.unwrap();
    ctx
}

fn assert_permanent(result: Result<(), StageError>, expected_kind: &str) {
    match result {
        Err(e @ StageError::Permanent { .. }) => assert_eq!(e.kind(), expected_kind, "{e}"),
        other => panic!("expected a permanent {expected_kind} error, got {other:?}"),
    }
}

#[tokio::test]
async fn upload_fetches_hashes_and_reports_bytes() {
    let world = World::new().await;
    let doc = world.job("invoice_en.pdf").await;
    let mut ctx = world.context_with(PipelineConfig::default(), doc);
    let report = Upload.run(&mut ctx).await.unwrap();
    let bytes = sample("invoice_en.pdf");
    let upload = ctx.upload.as_ref().unwrap();
    assert_eq!(upload.sha256, sha256_hex(&bytes));
    assert_eq!(upload.size, bytes.len() as u64);
    assert_eq!(&upload.bytes[..], &bytes[..]);
    assert_eq!((report.items_processed, report.bytes_processed), (1, bytes.len() as u64));
}

#[tokio::test]
async fn upload_rejects_a_size_mismatch_permanently() {
    let world = World::new().await;
    let mut doc = world.job("invoice_en.txt").await;
    doc.file_size += 1;
    let mut ctx = world.context_with(PipelineConfig::default(), doc);
    assert_permanent(Upload.run(&mut ctx).await.map(|_| ()), kind::SIZE_MISMATCH);
}

#[tokio::test]
async fn upload_of_a_missing_blob_fails_permanently() {
    let world = World::new().await;
    let mut doc = world.job("invoice_en.txt").await;
    doc.blob_path = "uploads/never-uploaded.pdf".into();
    let mut ctx = world.context_with(PipelineConfig::default(), doc);
    assert_permanent(Upload.run(&mut ctx).await.map(|_| ()), kind::BLOB_MISSING);
}

#[tokio::test]
async fn upload_from_an_unreachable_store_is_retryable() {
    let world = World::new().await;
    let doc = world.job("invoice_en.txt").await;
    let mut ctx = world.context_with(PipelineConfig::default(), doc);
    ctx.blobs = Arc::new(crate::support::UnreachableStore);
    let err = Upload.run(&mut ctx).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.kind(), kind::BLOB_STORE_UNAVAILABLE);
}

#[tokio::test]
async fn validation_accepts_each_supported_format() {
    let world = World::new().await;
    for (name, format, pages) in [
        ("invoice_en.pdf", DocumentFormat::Pdf, Some(1)),
        ("contract_en.pdf", DocumentFormat::Pdf, Some(2)),
        ("photo.png", DocumentFormat::Png, None),
        ("invoice_en.txt", DocumentFormat::Text, None),
        ("bank_statement_2026-02.csv", DocumentFormat::Csv, None),
        ("invoice_nl.xml", DocumentFormat::Xml, None),
    ] {
        let (ctx, result) = validate(&world, name, PipelineConfig::default()).await;
        result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let v = ctx.validation.as_ref().unwrap();
        assert_eq!((v.format, v.page_count), (format, pages), "{name}");
        assert_eq!(v.mime_type, format.mime_type());
    }
}

#[tokio::test]
async fn validation_rejects_a_truncated_pdf_as_broken() {
    let world = World::new().await;
    let (ctx, result) = validate(&world, "truncated.pdf", PipelineConfig::default()).await;
    assert_permanent(result, kind::BROKEN_PDF);
    assert!(ctx.validation.is_none());
}

#[tokio::test]
async fn validation_rejects_a_pdf_that_is_not_one() {
    let world = World::new().await;
    let doc = world.job_with("fake.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage garbage\n").await;
    let mut ctx = world.context_with(PipelineConfig::default(), doc);
    Upload.run(&mut ctx).await.unwrap();
    assert_permanent(Validation.run(&mut ctx).await.map(|_| ()), kind::BROKEN_PDF);
}

#[tokio::test]
async fn validation_rejects_an_encrypted_pdf() {
    let world = World::new().await;
    let (_, result) = validate(&world, "encrypted.pdf", PipelineConfig::default()).await;
    assert_permanent(result, kind::ENCRYPTED);
}

#[tokio::test]
async fn validation_rejects_an_empty_document() {
    let world = World::new().await;
    let (_, result) = validate(&world, "empty.pdf", PipelineConfig::default()).await;
    assert_permanent(result, kind::EMPTY);
    let doc = world.job_with("blank.txt", b" \n\t\n").await;
    let mut ctx = world.context_with(PipelineConfig::default(), doc);
    Upload.run(&mut ctx).await.unwrap();
    assert_permanent(Validation.run(&mut ctx).await.map(|_| ()), kind::EMPTY);
}

#[tokio::test]
async fn validation_rejects_unsupported_types() {
    let world = World::new().await;
    for name in ["archive.zip", "random.bin"] {
        let (_, result) = validate(&world, name, PipelineConfig::default()).await;
        assert_permanent(result, kind::UNSUPPORTED_TYPE);
    }
}

#[tokio::test]
async fn validation_rejects_oversized_documents() {
    let world = World::new().await;
    let config = PipelineConfig { max_document_bytes: 100, ..PipelineConfig::default() };
    let (_, result) = validate(&world, "invoice_en.pdf", config).await;
    assert_permanent(result, kind::TOO_LARGE);
}

#[tokio::test]
async fn classification_of_the_samples() {
    let world = World::new().await;
    for (name, expected) in [
        ("invoice_en.pdf", DocumentType::Invoice),
        ("rechnung_de.pdf", DocumentType::Invoice),
        ("invoice_en.txt", DocumentType::Invoice),
        ("invoice_de.txt", DocumentType::Invoice),
        ("invoice_nl.xml", DocumentType::Invoice),
        ("scanned_invoice.pdf", DocumentType::Invoice),
        ("credit_note_nl.txt", DocumentType::CreditNote),
        ("receipt_fr.txt", DocumentType::Receipt),
        ("contract_en.pdf", DocumentType::Contract),
        ("bank_statement_2026-02.csv", DocumentType::BankStatement),
        ("photo.png", DocumentType::Other),
    ] {
        let doc = world.job(name).await;
        let mut ctx = world.context_with(PipelineConfig::default(), doc);
        Upload.run(&mut ctx).await.unwrap();
        Validation.run(&mut ctx).await.unwrap();
        let report = Classification.run(&mut ctx).await.unwrap();
        let c = ctx.classification.as_ref().unwrap();
        assert_eq!(c.document_type, expected, "{name}: {c:?}");
        assert!((0.0..=1.0).contains(&c.confidence));
        assert_eq!(report.document_type.as_deref(), Some(expected.as_str()));
    }
}

#[tokio::test]
async fn extraction_reads_pdf_pages_and_text_formats() {
    let world = World::new().await;
    let ctx = through_extraction(&world, "contract_en.pdf").await;
    let e = ctx.extraction.as_ref().unwrap();
    assert_eq!(e.page_count, 2);
    assert!(!e.needs_ocr);
    assert!(e.text.starts_with("SERVICE AGREEMENT\n"), "{}", e.text);
    assert!(e.text.contains("4. Governing law."), "second page: {}", e.text);
    assert_eq!(e.text_sha256, sha256_hex(e.text.as_bytes()));
    assert!(e.unreadable_pages.is_empty());

    let ctx = through_extraction(&world, "bank_statement_2026-02.csv").await;
    let e = ctx.extraction.as_ref().unwrap();
    assert!(e.text.contains("2026-02-03\tInvoice INV-2026-0042 ACME Widgets Ltd\t-1,500.00\t3,500.00\n"), "{}", e.text);

    let ctx = through_extraction(&world, "invoice_nl.xml").await;
    assert!(ctx.extraction.as_ref().unwrap().text.contains("Payable Amount: 968.00 EUR\n"));
}

#[tokio::test]
async fn extraction_marks_images_and_scans_for_ocr() {
    let world = World::new().await;
    for (name, pages) in [("photo.png", 1), ("scanned_invoice.pdf", 1)] {
        let ctx = through_extraction(&world, name).await;
        let e = ctx.extraction.as_ref().unwrap();
        assert!(e.needs_ocr, "{name}");
        assert_eq!(e.text.trim(), "", "{name}");
        assert_eq!(e.page_count, pages, "{name}");
    }
}

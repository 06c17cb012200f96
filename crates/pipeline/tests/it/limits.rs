//! Hostile documents and stage time limits through `Pipeline::run`: a
//! document over a limit fails at once and for good (`document_too_complex`),
//! a stage's work stops when its time runs out, and the first page of a PDF
//! is laid out once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pipeline::stages::names;
use pipeline::{Pipeline, PipelineConfig, Stage, StageContext, StageError, StageReport, blocking, kind};
use test_support::hostile;

use crate::support::{World, standard};

#[tokio::test]
async fn hostile_documents_fail_at_once_as_too_complex() {
    let world = World::new().await;
    let pipeline = standard();
    for (name, bytes) in hostile::all() {
        let mut ctx = world.context(&pipeline, world.job_with(name, &bytes).await);
        let run = world.run(&pipeline, &mut ctx).await;
        let (outcome, error) = run.failure().unwrap_or_else(|| panic!("{name} completed: {:?}", ctx.extraction));
        assert_eq!(error.kind(), kind::DOCUMENT_TOO_COMPLEX, "{name}: {error}");
        assert!(!error.is_retryable(), "{name}: retrying would only do it again");
        assert!(ctx.storage.is_none() && ctx.outputs().result.is_none(), "{name}: no partial result");
        // The bomb is a page's content, found when the page is laid out;
        // the others are refused before lopdf parses the file.
        let stage = if name == "decompression_bomb.pdf" { names::CLASSIFICATION } else { names::VALIDATION };
        assert_eq!(outcome.stage, stage, "{name}: {error}");
        println!("{name}: {error}");
    }
    // The same page without the hostile part is read.
    let mut ctx = world.context(&pipeline, world.job_with("plain.pdf", &hostile::plain()).await);
    let run = world.run(&pipeline, &mut ctx).await;
    assert!(run.succeeded(), "{:?}", run.failure());
    assert!(ctx.extraction.unwrap().text.contains("INV-1"));
}

#[tokio::test]
async fn each_page_of_a_pdf_is_laid_out_once() {
    let world = World::new().await;
    let pipeline = standard();
    let mut ctx = world.context(&pipeline, world.job("contract_en.pdf").await);
    let run = world.run(&pipeline, &mut ctx).await;
    assert!(run.succeeded(), "{:?}", run.failure());
    let pages = ctx.pdf_pages.as_ref().expect("the laid-out pages are kept");
    assert_eq!(pages.total, 2);
    assert_eq!(pages.read.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2]);
    // Classification laid out page 1, extraction only page 2.
    assert_eq!(ctx.work.pages_laid_out(), 2, "one layout per page, over all stages");
    let extraction = ctx.extraction.as_ref().unwrap();
    assert_eq!(extraction.text, pages.text().text);
    assert!(extraction.text.starts_with(&pages.read[0].text), "page 1 is in the extracted text");
}

/// Document work that keeps a core busy past half its stage's time limit
/// before it looks at its meter, as a parser between two checks does.
struct Spins {
    stopped: Arc<AtomicBool>,
}

#[async_trait]
impl Stage for Spins {
    fn name(&self) -> &'static str {
        "spins"
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let stopped = self.stopped.clone();
        blocking(&ctx.work, move |meter| {
            let mut x = 0u64;
            loop {
                for i in 0..100_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                }
                if meter.cpu_used() >= Duration::from_millis(80) && meter.check().is_err() {
                    stopped.store(true, Ordering::SeqCst);
                    return;
                }
            }
        })
        .await?;
        Ok(StageReport::default())
    }
}

#[tokio::test]
async fn a_stage_whose_own_work_runs_out_its_time_is_stopped_and_fails_for_good() {
    let world = World::new().await;
    let config = PipelineConfig::default().with_stage_timeout("spins", Duration::from_millis(100));
    let mut pipeline = Pipeline::standard(config).unwrap();
    let stopped = Arc::new(AtomicBool::new(false));
    pipeline.insert_after(names::UPLOAD, Spins { stopped: stopped.clone() }).unwrap();
    let mut ctx = world.context(&pipeline, world.job("invoice_en.txt").await);
    let run = world.run(&pipeline, &mut ctx).await;

    let (outcome, error) = run.failure().expect("the stage times out");
    assert_eq!(outcome.stage, "spins");
    assert_eq!((error.kind(), error.is_retryable()), (kind::DOCUMENT_TOO_COMPLEX, false), "{error}");
    assert!(error.message().contains("exceeded its time limit of 100 ms"), "{error}");
    // By the time the run is reported, the work has stopped: nothing of
    // this attempt runs on beside the next one.
    assert!(stopped.load(Ordering::SeqCst), "the blocking work saw the cancellation");
    assert_eq!(ctx.work.running(), 0);
}

#[tokio::test]
async fn a_document_over_its_cpu_budget_fails_for_good() {
    let world = World::new().await;
    // Within every size limit, but a million operators to interpret.
    let mut content = b"BT /F1 10 Tf 56 700 Td (Invoice INV-1) Tj ET\n".to_vec();
    content.extend(b"1 0 0 1 0 0 cm\n".repeat(500_000));
    let bytes = crate::pdfgen::pdf_with_content(content, true);
    let config = PipelineConfig { document_cpu_budget: Duration::from_millis(1), ..PipelineConfig::default() };
    let pipeline = Pipeline::standard(config.clone()).unwrap();
    let mut ctx = world.context_with(config, world.job_with("costly.pdf", &bytes).await);
    let run = world.run(&pipeline, &mut ctx).await;
    let (_, error) = run.failure().expect("over its budget");
    assert_eq!((error.kind(), error.is_retryable()), (kind::DOCUMENT_TOO_COMPLEX, false), "{error}");
    assert!(error.message().contains("s of CPU, the budget is"), "{error}");
    assert_eq!(ctx.work.running(), 0);

    // With the default budget the same document is read.
    let pipeline = standard();
    let mut ctx = world.context(&pipeline, world.job_with("costly.pdf", &bytes).await);
    assert!(world.run(&pipeline, &mut ctx).await.succeeded());
    assert!(ctx.extraction.unwrap().text.contains("INV-1"));
}

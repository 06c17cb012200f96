//! The extraction figures on the shared corpus may not fall: a change that
//! breaks the structured reader or the visible-text extractor fails here.
//!
//! The floors sit just below what `make eval` measures (README, "Accuracy
//! on the e-invoice corpus"); they are fractions of fields, never times.
//! A fixed third of the corpus keeps the debug build well under a minute;
//! `make eval` scores all of it.

use pipeline::eval::{Mode, Report, corpus_files, evaluate};

use crate::corpus::corpus_dir;

/// Every third file, in path order: all producers and folders stay in.
fn subset() -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let dir = corpus_dir();
    let files = corpus_files(&dir).expect("corpus readable");
    assert!(files.len() > 200, "the corpus looks incomplete: {} files", files.len());
    let subset = files.into_iter().enumerate().filter(|(i, _)| i % 3 == 0).map(|(_, f)| f).collect();
    (dir, subset)
}

fn assert_floor(report: &Report, field: &str, floor: f64) {
    let score = report.field(field).unwrap_or_else(|| panic!("no score for {field}"));
    assert!(
        score.present > 0 && score.accuracy >= floor,
        "{:?} {field}: {} of {} correct ({:.3}), floor {floor}\n{}",
        report.mode,
        score.correct,
        score.present,
        score.accuracy,
        report.render()
    );
}

#[test]
fn structured_reader_reads_every_field_of_the_xml() {
    let (dir, files) = subset();
    let report = evaluate(&dir, &files, Mode::Structured);
    assert!(report.scored_documents >= 60, "{}", report.render());
    assert_eq!(report.correct, report.present, "{}\n{:#?}", report.render(), report.mismatches);
}

#[test]
fn visible_text_extraction_holds_its_floor() {
    let (dir, files) = subset();
    let report = evaluate(&dir, &files, Mode::Generic);
    println!("{}", report.render());
    assert!(report.scored_documents >= 40, "{}", report.render());
    for (field, floor) in FLOORS {
        assert_floor(&report, field, *floor);
    }
    assert!(report.accuracy >= TOTAL_FLOOR, "total {:.3} < {TOTAL_FLOOR}\n{}", report.accuracy, report.render());
}

/// Per-field floors for the visible-text extractor on the subset.
const FLOORS: &[(&str, f64)] = &[
    ("invoice_number", 0.92),
    ("issue_date", 0.9),
    ("due_date", 0.78),
    ("currency", 0.98),
    ("net_amount", 0.9),
    ("vat_amount", 0.89),
    ("total_amount", 0.92),
    ("supplier", 0.96),
    ("vat_id", 0.91),
    ("iban", 0.66),
];
const TOTAL_FLOOR: f64 = 0.90;

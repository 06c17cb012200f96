//! The evaluation harness over a corpus directory (`make eval`).
//!
//! ```text
//! cargo run --release -p pipeline --example eval -- ../shared/corpus/einvoice-zugferd [--mode structured|generic|both] [--json FILE] [--mismatches]
//! ```
//!
//! Scores the structured reader (XML preferred, bare and embedded) and the
//! visible-text extractor (PDFs with their XML ignored) against the XML's
//! values; prints per-field accuracy and documents/s; `--json` writes both
//! reports. `--stream-order` reads PDF text in content-stream order (the
//! engine before layout analysis), to compare.

use std::path::PathBuf;
use std::process::ExitCode;

use pipeline::DocumentFormat;
use pipeline::document::{DocumentAnalysis, fields_of};
use pipeline::eval::{Mode, corpus_files, evaluate_by, evaluate_with};
use pipeline::pdf::TextEngine;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut json: Option<PathBuf> = None;
    let mut modes = vec![Mode::Structured, Mode::Generic];
    let mut show_mismatches = false;
    let mut engine = TextEngine::Layout;
    let mut text_dir: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = args.next().map(PathBuf::from),
            "--mismatches" => show_mismatches = true,
            // The content-stream order of lopdf's extract_text, for comparison.
            "--stream-order" => engine = TextEngine::StreamOrder,
            // Text made by another extractor: DIR/<path in corpus>.txt per
            // PDF (generic mode; scores the candidate, not the pipeline).
            "--text-dir" => text_dir = args.next().map(PathBuf::from),
            "--mode" => {
                modes = match args.next().as_deref() {
                    Some("structured") => vec![Mode::Structured],
                    Some("generic") => vec![Mode::Generic],
                    Some("both") => vec![Mode::Structured, Mode::Generic],
                    other => {
                        eprintln!("unknown mode {other:?}: structured, generic or both");
                        return ExitCode::from(2);
                    }
                }
            }
            // Time the PDF text engines alone (no fields): ms per page.
            "--bench-text" => {
                let Some(dir) = args.next().map(PathBuf::from) else {
                    eprintln!("--bench-text DIR");
                    return ExitCode::from(2);
                };
                return bench_text(&dir);
            }
            "-h" | "--help" => {
                println!(
                    "usage: eval CORPUS_DIR [--mode structured|generic|both] [--json FILE] [--mismatches] [--stream-order]"
                );
                return ExitCode::SUCCESS;
            }
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    let Some(dir) = dir else {
        eprintln!(
            "usage: eval CORPUS_DIR [--mode structured|generic|both] [--json FILE] [--mismatches] [--stream-order]"
        );
        return ExitCode::from(2);
    };
    let files = match corpus_files(&dir) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("no PDF or XML files under {}", dir.display());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let reports: Vec<_> = match &text_dir {
        None => modes.iter().map(|m| evaluate_with(&dir, &files, *m, engine)).collect(),
        Some(texts) => {
            let run = |path: &std::path::Path, _: &[u8], _: &pipeline::document::AnalyseOptions| {
                let rel = path.strip_prefix(&dir).unwrap_or(path);
                let text = std::fs::read_to_string(texts.join(rel).with_extension("pdf.txt")).unwrap_or_default();
                let mut a = DocumentAnalysis::empty(DocumentFormat::Pdf);
                a.fields = fields_of(DocumentFormat::Pdf, &text, None);
                a.text = text;
                Ok(a)
            };
            vec![evaluate_by(&dir, &files, Mode::Generic, engine, &run)]
        }
    };
    for r in &reports {
        print!("{}", r.render());
        if show_mismatches {
            for m in &r.mismatches {
                println!("    {} {}: expected {:?}, got {:?}", m.file, m.field, m.expected, m.got);
            }
            for s in r.skipped.iter().chain(&r.rejected) {
                println!("    skipped {}: {}", s.file, s.reason);
            }
        }
        println!();
    }
    if let Some(path) = json {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent);
        }
        let body = serde_json::json!({ "reports": reports });
        match serde_json::to_string_pretty(&body).map(|s| std::fs::write(&path, s)) {
            Ok(Ok(())) => println!("wrote {}", path.display()),
            Ok(Err(e)) => {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("cannot serialise the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Times each PDF text engine over every PDF under `dir` (loading excluded).
fn bench_text(dir: &std::path::Path) -> ExitCode {
    let Ok(files) = corpus_files(dir) else {
        eprintln!("cannot read {}", dir.display());
        return ExitCode::FAILURE;
    };
    let docs: Vec<_> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf")))
        .filter_map(|f| std::fs::read(f).ok())
        .filter_map(|b| pipeline::pdf::load(&b).ok())
        .collect();
    let pages: usize = docs.iter().map(|d| d.get_pages().len()).sum();
    for (name, engine) in [("layout", TextEngine::Layout), ("stream order", TextEngine::StreamOrder)] {
        let started = std::time::Instant::now();
        let mut chars = 0;
        for d in &docs {
            chars += pipeline::pdf::text(d, None, engine).map_or(0, |t| t.text.len());
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{name:>12}: {} PDFs, {pages} pages, {:.2} ms/page, {:.0} pages/s, {chars} bytes of text",
            docs.len(),
            secs * 1000.0 / pages.max(1) as f64,
            pages as f64 / secs
        );
    }
    ExitCode::SUCCESS
}

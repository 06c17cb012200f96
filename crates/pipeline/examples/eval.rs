//! The evaluation harness over a corpus directory (`make eval`).
//!
//! ```text
//! cargo run --release -p pipeline --example eval -- ../shared/corpus/einvoice-zugferd [--mode structured|generic|both] [--json FILE] [--mismatches]
//! ```
//!
//! Scores the structured reader (XML preferred, bare and embedded) and the
//! visible-text extractor (PDFs with their XML ignored) against the XML's
//! values; prints per-field accuracy and documents/s; `--json` writes both
//! reports.

use std::path::PathBuf;
use std::process::ExitCode;

use pipeline::eval::{Mode, corpus_files, evaluate};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut json: Option<PathBuf> = None;
    let mut modes = vec![Mode::Structured, Mode::Generic];
    let mut show_mismatches = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = args.next().map(PathBuf::from),
            "--mismatches" => show_mismatches = true,
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
            "-h" | "--help" => {
                println!("usage: eval CORPUS_DIR [--mode structured|generic|both] [--json FILE] [--mismatches]");
                return ExitCode::SUCCESS;
            }
            _ => dir = Some(PathBuf::from(arg)),
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: eval CORPUS_DIR [--mode structured|generic|both] [--json FILE] [--mismatches]");
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
    let reports: Vec<_> = modes.iter().map(|m| evaluate(&dir, &files, *m)).collect();
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

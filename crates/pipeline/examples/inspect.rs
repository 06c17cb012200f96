//! Runs the document-only part of the pipeline (validation, classification,
//! extraction, analysis) over local files and prints what it finds: a quick
//! way to see why a document is classified or read the way it is, without a
//! database or blob store.
//!
//! ```text
//! cargo run -p pipeline --example inspect -- samples/invoice_en.pdf [--text] [--no-xml] [--stream-order]
//! ```
//!
//! `--no-xml` ignores e-invoice XML (bare or embedded) and reads the visible
//! text, as the evaluation harness does in its generic mode;
//! `--stream-order` reads PDF text in content-stream order instead of by
//! layout.

use pipeline::document::{AnalyseOptions, analyse};
use pipeline::pdf::TextEngine;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show_text = args.iter().any(|a| a == "--text");
    let text_engine =
        if args.iter().any(|a| a == "--stream-order") { TextEngine::StreamOrder } else { TextEngine::Layout };
    let options = AnalyseOptions { ignore_structured: args.iter().any(|a| a == "--no-xml"), text_engine };
    for path in args.iter().filter(|a| !a.starts_with("--")) {
        println!("== {path}");
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                println!("   cannot read: {e}");
                continue;
            }
        };
        let a = match analyse(path, &bytes, &options) {
            Ok(a) => a,
            Err(why) => {
                println!("   rejected: {why}");
                continue;
            }
        };
        println!("   format: {}, {} page(s)", a.format.as_str(), a.page_count);
        if show_text {
            println!("--- text\n{}---", a.text);
        }
        let c = &a.classification;
        println!("   type: {} ({:.2}) {:?}", c.document_type, c.confidence, c.matched);
        match serde_json::to_string_pretty(&a.fields) {
            Ok(json) => println!("{json}"),
            Err(e) => println!("   fields: {e}"),
        }
    }
}

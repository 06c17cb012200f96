//! Runs the document-only part of the pipeline (validation, classification,
//! extraction, analysis) over local files and prints what it finds: a quick
//! way to see why a document is classified or read the way it is, without a
//! database or blob store.
//!
//! ```text
//! cargo run -p pipeline --example inspect -- samples/invoice_en.pdf [--text]
//! ```

use pipeline::pdf::{self, PdfProblem};
use pipeline::sniff::{Sniffed, sniff};
use pipeline::{DocumentFormat, classify, extract_fields};

fn text_of(format: DocumentFormat, bytes: &[u8]) -> Result<String, String> {
    match format {
        DocumentFormat::Pdf => match pdf::load(bytes) {
            Ok(doc) => Ok(pdf::extract_text(&doc, None).text),
            Err(PdfProblem::Encrypted) => Err("encrypted".into()),
            Err(PdfProblem::Broken(why)) => Err(format!("broken_pdf: {why}")),
        },
        f if f.is_image() => Ok(String::new()),
        f => {
            let text = pipeline::text::decode(bytes).ok_or("invalid text")?;
            Ok(match f {
                DocumentFormat::Csv => pipeline::text::csv_to_text(text),
                DocumentFormat::Xml => pipeline::text::xml_to_text(text),
                _ => text.to_owned(),
            })
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show_text = args.iter().any(|a| a == "--text");
    for path in args.iter().filter(|a| !a.starts_with("--")) {
        println!("== {path}");
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                println!("   cannot read: {e}");
                continue;
            }
        };
        if bytes.is_empty() {
            println!("   empty");
            continue;
        }
        let format = match sniff(&bytes) {
            Sniffed::Supported(f) => f,
            other => {
                println!("   unsupported: {other:?}");
                continue;
            }
        };
        println!("   format: {}", format.as_str());
        let text = match text_of(format, &bytes) {
            Ok(t) => t,
            Err(e) => {
                println!("   rejected: {e}");
                continue;
            }
        };
        if show_text {
            println!("--- text\n{text}---");
        }
        let c = classify(path, format, &text);
        println!("   type: {} ({:.2}) {:?}", c.document_type, c.confidence, c.matched);
        let fields = extract_fields(&text);
        match serde_json::to_string_pretty(&fields) {
            Ok(json) => println!("{json}"),
            Err(e) => println!("   fields: {e}"),
        }
    }
}

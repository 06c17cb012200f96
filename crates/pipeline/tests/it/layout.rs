//! Layout-aware PDF text: reading order by position, and the hostile-PDF
//! limits. No services needed.

use pipeline::document::{AnalyseOptions, analyse};
use pipeline::pdf::{self, TextEngine};
use pipeline::{Amount, Stopped, limits};

use crate::pdfgen::{at, pdf, pdf_with_content};

/// Two columns painted one after the other, as report generators do:
/// every label first, then every value.
fn two_column_pdf() -> Vec<u8> {
    let labels = ["Rechnungsnummer:", "Rechnungsdatum:", "Kundennummer:", "Gesamtbetrag:"];
    let values = ["RE-2026-0815", "02.03.2026", "K-4711", "1.190,00 EUR"];
    let mut texts = vec![at(56.0, 800.0, "Muster Elektro GmbH"), at(56.0, 770.0, "RECHNUNG")];
    for (i, l) in labels.iter().enumerate() {
        texts.push(at(56.0, 700.0 - 15.0 * i as f32, l));
    }
    for (i, v) in values.iter().enumerate() {
        texts.push(at(300.0, 700.0 - 15.0 * i as f32, v));
    }
    pdf(&texts, None)
}

#[test]
fn a_two_column_pdf_keeps_label_and_value_on_one_line() {
    let bytes = two_column_pdf();
    let doc = pdf::load(&bytes).expect("loads");
    let text = pdf::text(&doc, None, TextEngine::Layout).unwrap().text;
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"Rechnungsnummer:\tRE-2026-0815"), "{text}");
    assert!(lines.contains(&"Gesamtbetrag:\t1.190,00 EUR"), "{text}");
    // In content-stream order the value is lines away from its label.
    let stream = pdf::text(&doc, None, TextEngine::StreamOrder).unwrap().text;
    assert!(!stream.lines().any(|l| l.contains("Rechnungsnummer:") && l.contains("RE-2026-0815")), "{stream}");

    let a = analyse("two_columns.pdf", &bytes, &AnalyseOptions::default()).expect("accepted");
    assert_eq!(a.fields.invoice_number.map(|f| f.value).as_deref(), Some("RE-2026-0815"));
    assert_eq!(a.fields.total_amount.map(|f| f.value), Some(Amount::from_cents(119_000)));
}

#[test]
fn tj_offsets_and_text_matrices_place_words() {
    // A kerned TJ with a word-sized gap, then a Tm jump to a right column
    // on the same baseline, then T* to the next line.
    let content =
        b"BT /F1 10 Tf 12 TL 1 0 0 1 56 700 Tm [(Invoice)-300(no.)] TJ 1 0 0 1 400 700 Tm (INV-9) Tj T* (next) Tj ET"
            .to_vec();
    let bytes = pdf_with_content(content, false);
    let doc = pdf::load(&bytes).expect("loads");
    let out = pdf::text(&doc, None, TextEngine::Layout).unwrap();
    assert_eq!(out.text, "Invoice no.\tINV-9\nnext\n");
    assert!(out.unreadable_pages.is_empty());
}

/// The "too complex" kind, or a panic naming what came instead.
fn too_complex(result: Result<pdf::PdfText, Stopped>) -> String {
    match result {
        Err(Stopped::TooComplex(e)) => e.to_string(),
        other => panic!("expected a too-complex document, got {other:?}"),
    }
}

#[test]
fn too_many_operators_fail_the_document() {
    // Two bytes per operator: within the content-bytes limit, over the
    // operator limit. Not a partial text: the document is refused.
    let mut content = b"BT /F1 10 Tf 56 700 Td (kept) Tj ET\n".to_vec();
    content.extend(b"n\n".repeat(limits::MAX_PDF_OPERATORS + 10));
    assert!(content.len() < limits::MAX_PAGE_CONTENT_BYTES);
    let bytes = pdf_with_content(content, true);
    let doc = pdf::load(&bytes).expect("loads");
    let why = too_complex(pdf::text(&doc, None, TextEngine::Layout));
    assert!(why.contains("page 1") && why.contains("content operators"), "{why}");
}

#[test]
fn a_decompression_bomb_is_not_inflated() {
    // Compresses about a thousandfold; over the per-page limit inflated.
    let content = vec![b' '; limits::MAX_PAGE_CONTENT_BYTES + 1024];
    let bytes = pdf_with_content(content, true);
    assert!(bytes.len() < 200_000, "{}", bytes.len());
    let doc = pdf::load(&bytes).expect("loads");
    let why = too_complex(pdf::text(&doc, None, TextEngine::Layout));
    assert!(why.contains("decompressed bytes of one content stream"), "{why}");
}

#[test]
fn operands_are_counted_before_lopdf_collects_them() {
    // 4 MiB inflated, under the content limit: two million numbers with no
    // operator, which lopdf would hold all at once (~250 MB).
    let mut content = b"BT /F1 10 Tf 56 700 Td (kept) Tj ET\n".to_vec();
    content.extend(b"0 ".repeat(2 << 20));
    let bytes = pdf_with_content(content, true);
    let doc = pdf::load(&bytes).expect("loads");
    let why = too_complex(pdf::text(&doc, None, TextEngine::Layout));
    assert!(why.contains("operands of one content operator"), "{why}");
}

#[test]
fn a_damaged_page_is_unreadable_not_too_complex() {
    // An inline image without its EI: lopdf cannot decode past it.
    let content = b"BT /F1 10 Tf 56 700 Td (kept) Tj ET\nBI /W 1 /H 1 /BPC 8 /CS /G ID X\nBT (lost) Tj ET".to_vec();
    let bytes = pdf_with_content(content, false);
    let doc = pdf::load(&bytes).expect("loads");
    let out = pdf::text(&doc, None, TextEngine::Layout).unwrap();
    assert_eq!(out.text, "kept\n");
    assert_eq!(out.unreadable_pages, vec![1]);
}

//! Structured e-invoices read exactly (bare UBL and CII, Factur-X PDFs from
//! the corpus), and the fallback to visible text when the XML cannot be
//! used. Runs without services except the last test, which goes through
//! the whole standard pipeline.

use chrono::NaiveDate;
use pipeline::document::{AnalyseOptions, DocumentAnalysis, analyse};
use pipeline::eval::{truth_from_xml, values_of};
use pipeline::{Amount, DocumentType, Source};

use crate::corpus::corpus_file;
use crate::pdfgen::{at, pdf};
use crate::support::{World, standard};

fn analysed(path: &str) -> DocumentAnalysis {
    let bytes = std::fs::read(corpus_file(path)).expect("corpus file");
    analyse(path, &bytes, &AnalyseOptions::default()).expect("document accepted")
}

/// The values of the Einfach example (the same invoice in all three forms).
fn assert_einfach(a: &DocumentAnalysis, source: Source) {
    let f = &a.fields;
    let v = |x: &Option<pipeline::Field<String>>| x.as_ref().map(|x| (x.value.clone(), x.confidence, x.source));
    assert_eq!(v(&f.invoice_number), Some(("471102".into(), 1.0, source)));
    assert_eq!(v(&f.currency), Some(("EUR".into(), 1.0, source)));
    assert_eq!(v(&f.supplier), Some(("Lieferant GmbH".into(), 1.0, source)));
    assert_eq!(v(&f.vat_id), Some(("DE123456789".into(), 1.0, source)));
    assert_eq!(v(&f.buyer), Some(("Kunden AG Mitte".into(), 1.0, source)));
    assert_eq!(
        f.issue_date.as_ref().map(|d| (d.value, d.source)),
        Some((NaiveDate::from_ymd_opt(2018, 3, 5).unwrap(), source))
    );
    let amount =
        |x: &Option<pipeline::Field<Amount>>| x.as_ref().map(|x| (x.value.to_string(), x.confidence, x.source));
    assert_eq!(amount(&f.net_amount), Some(("473.00".into(), 1.0, source)));
    assert_eq!(amount(&f.vat_amount), Some(("56.87".into(), 1.0, source)));
    assert_eq!(amount(&f.total_amount), Some(("529.87".into(), 1.0, source)));
    assert_eq!(amount(&f.amount_due), Some(("529.87".into(), 1.0, source)));
    let lines: Vec<_> = f
        .line_items
        .iter()
        .map(|l| (l.name.as_deref(), l.quantity.as_deref(), l.net_price.as_deref(), l.line_total.as_deref()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (Some("Trennblätter A4"), Some("20"), Some("9.90"), Some("198.00")),
            (Some("Joghurt Banane"), Some("50"), Some("5.50"), Some("275.00")),
        ]
    );
    assert_eq!(f.structured_error, None);
    assert_eq!(a.classification.document_type, DocumentType::Invoice);
    assert_eq!(a.classification.confidence, 1.0);
}

#[test]
fn bare_ubl_is_read_exactly() {
    assert_einfach(&analysed("XML-Rechnung/UBL/EN16931_Einfach.ubl.xml"), Source::Ubl);
}

#[test]
fn bare_cii_is_read_exactly() {
    assert_einfach(&analysed("XML-Rechnung/CII/EN16931_Einfach.cii.xml"), Source::Cii);
}

#[test]
fn embedded_factur_x_is_read_exactly() {
    let a = analysed("XML-Rechnung/FX/EN16931_Einfach.pdf");
    assert_einfach(&a, Source::Cii);
    assert_eq!(a.fields.structured.as_ref().and_then(|s| s.attachment.as_deref()), Some("factur-x.xml"));
}

#[test]
fn every_scored_field_equals_the_embedded_xml() {
    // A ZUGFeRD 2 PDF from another producer, against its own XML read
    // independently by the harness.
    for path in [
        "ZUGFeRDv2/correct/intarsys/EN16931/zugferd_2p0_EN16931_Einfach.pdf",
        "ZUGFeRDv1/correct/Intarsys/ZUGFeRD_1p0_COMFORT_Einfach.pdf",
    ] {
        let bytes = std::fs::read(corpus_file(path)).expect("corpus file");
        let a = analyse(path, &bytes, &AnalyseOptions::default()).expect("accepted");
        let truth = pipeline::eval::truth_of(a.format, &bytes).expect("truth");
        let got = values_of(&a.fields);
        for (field, expected) in &truth {
            assert_eq!(got.get(field), Some(expected), "{path} {field}");
        }
    }
}

#[test]
fn ubl_credit_note_is_a_credit_note() {
    let a = analysed("XML-Rechnung/UBL/ubl-tc434-creditnote1.xml");
    assert_eq!(a.classification.document_type, DocumentType::CreditNote);
    assert_eq!(a.fields.invoice_number.as_ref().map(|f| f.source), Some(Source::Ubl));
}

#[test]
fn corpus_xml_without_a_currency_completes_from_the_visible_text() {
    // ZUGFeRD 1.0 from an early producer: the XML has no BT-5.
    let a = analysed("ZUGFeRDv1/correct/Mustangproject/MustangGnuaccountingBeispielRE-20151008_504.pdf");
    let f = &a.fields;
    let err = f.structured_error.as_deref().expect("the problem is recorded");
    assert!(err.contains("BT-5"), "{err}");
    assert_eq!(f.currency.as_ref().map(|c| (c.value.as_str(), c.source)), Some(("EUR", Source::PdfText)));
    assert_eq!(f.invoice_number.as_ref().map(|c| c.source), Some(Source::Cii));
}

const VISIBLE: &[(f32, f32, &str)] = &[
    (56.0, 780.0, "ACME Widgets GmbH"),
    (56.0, 740.0, "Rechnung"),
    (56.0, 720.0, "Rechnungsnummer: RE-77"),
    (56.0, 705.0, "Rechnungsdatum: 02.03.2026"),
    (56.0, 690.0, "Gesamtbetrag: 119,00 EUR"),
];

#[test]
fn broken_embedded_xml_falls_back_to_the_visible_text() {
    let texts: Vec<_> = VISIBLE.iter().map(|(x, y, t)| at(*x, *y, t)).collect();
    for xml in [
        &b"<rsm:CrossIndustryInvoice xmlns:rsm=\"urn:x\"><unclosed>"[..],
        b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>",
    ] {
        let bytes = pdf(&texts, Some(("factur-x.xml", xml)));
        let a = analyse("broken.pdf", &bytes, &AnalyseOptions::default()).expect("accepted");
        let f = &a.fields;
        let err = f.structured_error.as_deref().expect("the problem is recorded");
        assert!(err.starts_with("factur-x.xml: malformed XML"), "{err}");
        assert_eq!(f.structured, None);
        assert_eq!(f.invoice_number.as_ref().map(|c| (c.value.as_str(), c.source)), Some(("RE-77", Source::PdfText)));
        assert_eq!(f.total_amount.as_ref().map(|c| c.value), Some(Amount::from_cents(11_900)));
    }
}

#[test]
fn truth_reader_and_reader_agree_on_bare_files() {
    for path in ["XML-Rechnung/UBL/EN16931_Gutschrift.ubl.xml", "XML-Rechnung/CII/EN16931_Miete.cii.xml"] {
        let bytes = std::fs::read(corpus_file(path)).expect("corpus file");
        let truth = truth_from_xml(&bytes).expect("truth");
        let a = analyse(path, &bytes, &AnalyseOptions::default()).expect("accepted");
        let got = values_of(&a.fields);
        for (field, expected) in &truth {
            assert_eq!(got.get(field), Some(expected), "{path} {field}");
        }
    }
}

#[tokio::test]
async fn the_pipeline_stages_read_an_embedded_factur_x() {
    let world = World::new().await;
    let pipeline = standard();
    let bytes = std::fs::read(corpus_file("XML-Rechnung/FX/EN16931_Einfach.pdf")).expect("corpus file");
    let doc = world.job_with("EN16931_Einfach.pdf", &bytes).await;
    let mut ctx = world.context(&pipeline, doc);
    let run = pipeline.run(&mut ctx).await;
    assert!(run.succeeded(), "{:?}", run.result);
    let classification = ctx.classification.as_ref().unwrap();
    assert_eq!((classification.document_type, classification.confidence), (DocumentType::Invoice, 1.0));
    let fields = &ctx.analysis.as_ref().unwrap().fields;
    assert_eq!(fields.invoice_number.as_ref().map(|f| (f.value.as_str(), f.source)), Some(("471102", Source::Cii)));
    assert_eq!(fields.total_amount.as_ref().map(|f| f.value), Some(Amount::from_cents(52_987)));
    assert_eq!(fields.line_items.len(), 2);
}

#[tokio::test]
async fn the_pipeline_completes_a_pdf_with_incomplete_xml_from_its_text() {
    let world = World::new().await;
    let pipeline = standard();
    let name = "MustangGnuaccountingBeispielRE-20151008_504.pdf";
    let bytes = std::fs::read(corpus_file(&format!("ZUGFeRDv1/correct/Mustangproject/{name}"))).expect("corpus file");
    let doc = world.job_with(name, &bytes).await;
    let mut ctx = world.context(&pipeline, doc);
    let run = pipeline.run(&mut ctx).await;
    assert!(run.succeeded(), "{:?}", run.result);
    // The result document says where each field came from and why the XML
    // was not enough.
    let result = pipeline::stages::storage::result_document(&ctx).expect("result document");
    let json = serde_json::to_value(&result).expect("serialises");
    assert_eq!(json["fields"]["currency"]["source"], "pdf_text", "{json:#}");
    assert_eq!(json["fields"]["invoice_number"]["source"], "cii", "{json:#}");
    assert!(json["fields"]["structured_error"].as_str().is_some_and(|e| e.contains("BT-5")), "{json:#}");
}

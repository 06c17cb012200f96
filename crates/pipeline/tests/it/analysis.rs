//! Fields read from the known sample invoices, field by field, value and
//! confidence: the contract `samples/README.md` documents.

use chrono::NaiveDate;
use pipeline::{Amount, Field, InvoiceFields, Source};

use crate::support::{World, standard};

fn f<T>(value: T, confidence: f64) -> Option<Field<T>> {
    Some(Field { value, confidence, source: Source::Text })
}

fn s(value: &str, confidence: f64) -> Option<Field<String>> {
    f(value.to_owned(), confidence)
}

fn date(y: i32, m: u32, d: u32, confidence: f64) -> Option<Field<NaiveDate>> {
    f(NaiveDate::from_ymd_opt(y, m, d).unwrap(), confidence)
}

fn amount(cents: i64, confidence: f64) -> Option<Field<Amount>> {
    f(Amount::from_cents(cents), confidence)
}

/// Runs the whole standard pipeline and returns what analysis found.
async fn fields_of(name: &str) -> InvoiceFields {
    let world = World::new().await;
    let pipeline = standard();
    let doc = world.job(name).await;
    let mut ctx = world.context(&pipeline, doc);
    let run = pipeline.run(&mut ctx).await;
    assert!(run.succeeded(), "{name}: {:?}", run.result);
    ctx.analysis.unwrap().fields
}

#[tokio::test]
async fn known_english_pdf_invoice_every_field() {
    let expected = InvoiceFields {
        invoice_number: s("BL-2026-117", 0.95),
        issue_date: date(2026, 3, 1, 0.95),
        due_date: date(2026, 3, 31, 0.95),
        net_amount: amount(1_200_000, 0.98),
        vat_amount: amount(240_000, 0.98),
        total_amount: amount(1_440_000, 0.98),
        currency: s("EUR", 0.95),
        iban: s("GB82WEST12345698765432", 0.99),
        vat_id: s("GB980780684", 0.97),
        supplier: s("Brightline Software Ltd", 0.8),
        ..Default::default()
    };
    let mut expected = expected;
    expected.set_text_source(Source::PdfText);
    assert_eq!(fields_of("invoice_en.pdf").await, expected);
}

#[tokio::test]
async fn known_german_pdf_invoice_every_field() {
    let expected = InvoiceFields {
        invoice_number: s("RE-2026-0815", 0.95),
        issue_date: date(2026, 3, 2, 0.95),
        due_date: date(2026, 3, 16, 0.95),
        net_amount: amount(224_600, 0.98),
        vat_amount: amount(42_674, 0.98),
        total_amount: amount(267_274, 0.98),
        currency: s("EUR", 0.9),
        iban: s("DE89370400440532013000", 0.99),
        vat_id: s("DE136695976", 0.97),
        supplier: s("Elektro Schmidt GmbH", 0.8),
        ..Default::default()
    };
    let mut expected = expected;
    expected.set_text_source(Source::PdfText);
    assert_eq!(fields_of("rechnung_de.pdf").await, expected);
}

#[tokio::test]
async fn german_text_invoice_with_two_vat_rates() {
    let expected = InvoiceFields {
        invoice_number: s("2026-0042", 0.95),
        issue_date: date(2026, 2, 5, 0.95),
        due_date: date(2026, 2, 19, 0.95),
        net_amount: amount(30_000, 0.98),
        vat_amount: amount(4_500, 0.98),
        total_amount: amount(34_500, 0.98),
        currency: s("EUR", 0.95),
        iban: s("DE89370400440532013000", 0.99),
        vat_id: None,
        supplier: s("Muster Bürobedarf GmbH", 0.8),
        ..Default::default()
    };
    assert_eq!(fields_of("invoice_de.txt").await, expected);
}

#[tokio::test]
async fn english_text_invoice_due_date_from_payment_terms() {
    let expected = InvoiceFields {
        invoice_number: s("INV-2026-0042", 0.95),
        issue_date: date(2026, 3, 1, 0.95),
        // "Payment terms: Net 30" from 1 March.
        due_date: date(2026, 3, 31, 0.7),
        net_amount: amount(125_000, 0.98),
        vat_amount: amount(25_000, 0.98),
        total_amount: amount(150_000, 0.98),
        currency: s("GBP", 0.95),
        iban: s("GB82WEST12345698765432", 0.99),
        vat_id: s("GB123456782", 0.97),
        supplier: s("ACME Widgets Ltd", 0.8),
        ..Default::default()
    };
    assert_eq!(fields_of("invoice_en.txt").await, expected);
}

#[tokio::test]
async fn xml_and_credit_note_amounts() {
    let xml = fields_of("invoice_nl.xml").await;
    assert_eq!(xml.invoice_number, s("LL-2026-117", 0.95));
    assert_eq!(xml.total_amount, amount(96_800, 0.98));
    assert_eq!(xml.supplier, s("Lumen Lighting B.V.", 0.9));
    assert_eq!(xml.vat_id, s("NL004495445B01", 0.97));

    let credit = fields_of("credit_note_nl.txt").await;
    assert_eq!(credit.invoice_number, s("CN-2026-007", 0.95));
    // Printed with minus signs under a credit note's title: EN 16931 amounts
    // of a credit note are positive (its type says they are owed back).
    assert_eq!(credit.total_amount, amount(30_250, 0.98));
    assert_eq!(credit.vat_amount, amount(5_250, 0.98));
}

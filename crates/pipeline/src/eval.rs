//! The evaluation harness: runs the document stages over a corpus and scores
//! the fields against ground truth from EN 16931 XML.
//!
//! The truth is read here by plain element paths, independently of the
//! structured reader in [`crate::einvoice`], so that scoring the reader is
//! not the reader agreeing with itself. For a PDF the truth is its embedded
//! invoice XML; for a bare XML file, the file. Only fields present in the
//! XML are scored; a field the pipeline misses counts as wrong.
//!
//! Two modes: [`Mode::Structured`] runs the documents as the pipeline does
//! (XML preferred); [`Mode::Generic`] runs the PDFs with their XML ignored,
//! which scores the visible-text extractor against what the PDF shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use roxmltree::Node;
use serde::Serialize;

use crate::document::{AnalyseOptions, DocumentAnalysis, Rejected, analyse};
use crate::einvoice::{attachment, xml};
use crate::fields::{InvoiceFields, invoice_key, supplier_key};
use crate::sniff::{DocumentFormat, Sniffed, sniff};

/// The scored fields, in report order, with their EN 16931 business terms.
pub const FIELDS: [(&str, &str); 10] = [
    ("invoice_number", "BT-1"),
    ("issue_date", "BT-2"),
    ("due_date", "BT-9"),
    ("currency", "BT-5"),
    ("net_amount", "BT-109"),
    ("vat_amount", "BT-110"),
    ("total_amount", "BT-112"),
    ("supplier", "BT-27"),
    ("vat_id", "BT-31"),
    ("iban", "BT-84"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Documents as the pipeline reads them: structured XML where there is one.
    Structured,
    /// PDFs only, embedded XML ignored: the visible-text extractor.
    Generic,
}

/// A field value normalised for comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Text(String),
    Date(NaiveDate),
    /// Cents, exact.
    Cents(i64),
}

/// Ground truth of one document: field name → value.
pub type Truth = BTreeMap<&'static str, Value>;

#[derive(Debug, Clone, Default, Serialize)]
pub struct FieldScore {
    pub field: String,
    pub business_term: String,
    /// Documents whose XML has the field.
    pub present: usize,
    pub correct: usize,
    pub accuracy: f64,
    /// Misses whose true value does not appear in the document's text at
    /// all (the PDF shows something else than its XML): no text extractor
    /// can get them. Counted in the generic mode only.
    pub unreachable: usize,
    /// `correct / (present - unreachable)`.
    pub accuracy_reachable: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    pub file: String,
    pub field: String,
    pub expected: Value,
    pub got: Option<Value>,
    /// Whether the true value appears in the text at all (generic mode).
    pub in_text: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: Mode,
    pub corpus: String,
    /// Documents run through the stages (scored or not).
    pub documents: usize,
    /// Documents with ground truth, whose fields were scored.
    pub scored_documents: usize,
    pub fields: Vec<FieldScore>,
    pub present: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub unreachable: usize,
    pub accuracy_reachable: f64,
    /// Time in the document stages only (truth reading excluded).
    pub seconds: f64,
    pub documents_per_second: f64,
    pub skipped: Vec<Skipped>,
    pub rejected: Vec<Skipped>,
    pub mismatches: Vec<Mismatch>,
}

impl Report {
    pub fn field(&self, name: &str) -> Option<&FieldScore> {
        self.fields.iter().find(|f| f.field == name)
    }

    /// A table for people.
    pub fn render(&self) -> String {
        let mut out = format!(
            "mode {:?} on {}: {} documents, {} scored\n",
            self.mode, self.corpus, self.documents, self.scored_documents
        );
        let generic = self.mode == Mode::Generic;
        out.push_str(&format!("  {:<16} {:<7} {:>7} {:>7} {:>8}", "field", "BT", "present", "correct", "accuracy"));
        out.push_str(if generic { "  not in text  of the rest\n" } else { "\n" });
        let row = |name: &str, bt: &str, present, correct, accuracy, unreachable, reachable| {
            let mut r = format!("  {name:<16} {bt:<7} {present:>7} {correct:>7} {accuracy:>8.3}");
            if generic {
                r.push_str(&format!("  {unreachable:>11}  {reachable:>10.3}"));
            }
            r.push('\n');
            r
        };
        for f in &self.fields {
            out.push_str(&row(
                &f.field,
                &f.business_term,
                f.present,
                f.correct,
                f.accuracy,
                f.unreachable,
                f.accuracy_reachable,
            ));
        }
        out.push_str(&row(
            "TOTAL",
            "",
            self.present,
            self.correct,
            self.accuracy,
            self.unreachable,
            self.accuracy_reachable,
        ));
        out.push_str(&format!(
            "  {:.1} documents/s ({} documents in {:.2} s)\n",
            self.documents_per_second, self.documents, self.seconds
        ));
        out
    }
}

/// Files under `dir` (recursively), sorted, PDFs and XML only.
pub fn corpus_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("pdf") || e.eq_ignore_ascii_case("xml"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Scores `files` (paths shown relative to `root`).
pub fn evaluate(root: &Path, files: &[PathBuf], mode: Mode) -> Report {
    evaluate_with(root, files, mode, crate::pdf::TextEngine::default())
}

/// Scores `files` with a given PDF text engine (to compare candidates).
pub fn evaluate_with(root: &Path, files: &[PathBuf], mode: Mode, engine: crate::pdf::TextEngine) -> Report {
    evaluate_by(root, files, mode, engine, &|path: &Path, bytes: &[u8], options: &AnalyseOptions| {
        let filename = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        analyse(filename, bytes, options)
    })
}

/// How a document is run: [`analyse`], or a stand-in that reads text made
/// by another tool (to score candidate PDF text extractors).
pub type Runner<'a> = dyn Fn(&Path, &[u8], &AnalyseOptions) -> Result<DocumentAnalysis, Rejected> + 'a;

/// Scores `files`, each run by `run`.
pub fn evaluate_by(
    root: &Path,
    files: &[PathBuf],
    mode: Mode,
    engine: crate::pdf::TextEngine,
    run: &Runner<'_>,
) -> Report {
    let mut scores: Vec<FieldScore> = FIELDS
        .iter()
        .map(|(f, bt)| FieldScore { field: (*f).to_owned(), business_term: (*bt).to_owned(), ..Default::default() })
        .collect();
    let mut report = Report {
        mode,
        corpus: root.display().to_string(),
        documents: 0,
        scored_documents: 0,
        fields: Vec::new(),
        present: 0,
        correct: 0,
        accuracy: 0.0,
        unreachable: 0,
        accuracy_reachable: 0.0,
        seconds: 0.0,
        documents_per_second: 0.0,
        skipped: Vec::new(),
        rejected: Vec::new(),
        mismatches: Vec::new(),
    };
    let mut elapsed = 0.0f64;
    for path in files {
        let shown = path.strip_prefix(root).unwrap_or(path).display().to_string();
        let Ok(bytes) = std::fs::read(path) else {
            report.skipped.push(Skipped { file: shown, reason: "unreadable file".into() });
            continue;
        };
        let format = match sniff(&bytes) {
            Sniffed::Supported(f) => f,
            _ => {
                report.skipped.push(Skipped { file: shown, reason: "unsupported type".into() });
                continue;
            }
        };
        if mode == Mode::Generic && format != DocumentFormat::Pdf {
            continue;
        }
        let truth = truth_of(format, &bytes);
        let options = AnalyseOptions { ignore_structured: mode == Mode::Generic, text_engine: engine };
        let started = Instant::now();
        let analysis = run(path, &bytes, &options);
        elapsed += started.elapsed().as_secs_f64();
        report.documents += 1;
        let analysis = match analysis {
            Ok(a) => a,
            Err(why) => {
                report.rejected.push(Skipped { file: shown.clone(), reason: why.0 });
                // Still scored when there is truth: a rejected invoice has
                // every field wrong.
                match &truth {
                    Ok(_) => DocumentAnalysis::empty(format),
                    Err(_) => continue,
                }
            }
        };
        let truth = match truth {
            Ok(t) => t,
            Err(why) => {
                report.skipped.push(Skipped { file: shown, reason: why });
                continue;
            }
        };
        report.scored_documents += 1;
        let got = values_of(&analysis.fields);
        for score in scores.iter_mut() {
            let Some(expected) = truth.get(score.field.as_str()) else { continue };
            score.present += 1;
            let got = got.get(score.field.as_str()).cloned();
            if got.as_ref().is_some_and(|g| matches(&score.field, expected, g)) {
                score.correct += 1;
            } else {
                let in_text = mode == Mode::Structured || appears_in(&analysis.text, expected);
                if !in_text {
                    score.unreachable += 1;
                }
                report.mismatches.push(Mismatch {
                    file: shown.clone(),
                    field: score.field.clone(),
                    expected: expected.clone(),
                    got,
                    in_text,
                });
            }
        }
    }
    for s in scores.iter_mut() {
        s.accuracy = ratio(s.correct, s.present);
        s.accuracy_reachable = ratio(s.correct, s.present - s.unreachable);
    }
    report.present = scores.iter().map(|s| s.present).sum();
    report.correct = scores.iter().map(|s| s.correct).sum();
    report.unreachable = scores.iter().map(|s| s.unreachable).sum();
    report.accuracy = ratio(report.correct, report.present);
    report.accuracy_reachable = ratio(report.correct, report.present - report.unreachable);
    report.fields = scores;
    report.seconds = elapsed;
    report.documents_per_second = if elapsed > 0.0 { report.documents as f64 / elapsed } else { 0.0 };
    report
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { ((a as f64 / b as f64) * 1000.0).round() / 1000.0 }
}

/// Whether an extracted value counts as the true one. Invoice numbers
/// compare by letters and digits ("RE 2026/1" = "RE-2026-1"), supplier
/// names by their normalised key, one containing the other (a letterhead
/// may drop or add a legal form or a department).
fn matches(field: &str, expected: &Value, got: &Value) -> bool {
    match (field, expected, got) {
        ("invoice_number", Value::Text(e), Value::Text(g)) => invoice_key(e) == invoice_key(g),
        ("supplier", Value::Text(e), Value::Text(g)) => {
            let (e, g) = (supplier_key(e), supplier_key(g));
            !g.is_empty() && (e == g || (g.len() >= 4 && e.contains(&g)) || (e.len() >= 4 && g.contains(&e)))
        }
        _ => expected == got,
    }
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_uppercase()
}

/// Whether a true value is shown anywhere in `text`: as letters and digits
/// (numbers, ids), as a supplier key, as a date, or as an amount (either
/// sign: a credit note may print its amounts negative).
fn appears_in(text: &str, expected: &Value) -> bool {
    match expected {
        Value::Text(t) => {
            let (hay, needle) = (compact(text), compact(t));
            (!needle.is_empty() && hay.contains(&needle)) || {
                let (hay, needle) = (supplier_key(text), supplier_key(t));
                !needle.is_empty() && hay.contains(&needle)
            }
        }
        Value::Date(d) => crate::parse::date::find_dates(text).iter().any(|m| m.date == *d),
        Value::Cents(c) => crate::parse::amount::find_amounts(text).iter().any(|a| a.amount.cents().abs() == c.abs()),
    }
}

/// The pipeline's fields as comparable values.
pub fn values_of(f: &InvoiceFields) -> BTreeMap<&'static str, Value> {
    let mut out = BTreeMap::new();
    let mut text = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            out.insert(k, Value::Text(v));
        }
    };
    text("invoice_number", f.invoice_number.as_ref().map(|x| x.value.clone()));
    text("currency", f.currency.as_ref().map(|x| x.value.to_uppercase()));
    text("supplier", f.supplier.as_ref().map(|x| x.value.clone()));
    text("vat_id", f.vat_id.as_ref().map(|x| compact(&x.value)));
    text("iban", f.iban.as_ref().map(|x| compact(&x.value)));
    for (k, v) in [("issue_date", &f.issue_date), ("due_date", &f.due_date)] {
        if let Some(v) = v {
            out.insert(k, Value::Date(v.value));
        }
    }
    for (k, v) in [("net_amount", &f.net_amount), ("vat_amount", &f.vat_amount), ("total_amount", &f.total_amount)] {
        if let Some(v) = v {
            out.insert(k, Value::Cents(v.value.cents()));
        }
    }
    out
}

/// Ground truth of a document: its embedded XML (PDF) or itself (XML).
pub fn truth_of(format: DocumentFormat, bytes: &[u8]) -> Result<Truth, String> {
    match format {
        DocumentFormat::Pdf => {
            let doc = crate::pdf::load(bytes).map_err(|e| format!("PDF not loadable: {e:?}"))?;
            match attachment::invoice_xml(&doc) {
                None => Err("no embedded invoice XML".into()),
                Some(Err(why)) => Err(why),
                Some(Ok(a)) => truth_from_xml(&a.data),
            }
        }
        DocumentFormat::Xml => truth_from_xml(bytes),
        _ => Err("no XML".into()),
    }
}

/// Reads the scored fields from UBL or CII XML by their element paths.
pub fn truth_from_xml(bytes: &[u8]) -> Result<Truth, String> {
    let doc = xml::parse(bytes)?;
    let root = doc.root_element();
    let mut t = Truth::new();
    match root.tag_name().name() {
        "Invoice" if xml::child(root, "HeaderExchangedDocument").is_some() => cii_truth(root, &mut t, true),
        "Invoice" | "CreditNote" => ubl_truth(root, &mut t),
        "CrossIndustryInvoice" => cii_truth(root, &mut t, false),
        "CrossIndustryDocument" => cii_truth(root, &mut t, true),
        other => return Err(format!("not an EN 16931 invoice: root element {other}")),
    }
    if t.is_empty() {
        return Err("no scored field in the XML".into());
    }
    Ok(t)
}

fn put_text(t: &mut Truth, k: &'static str, v: Option<String>) {
    if let Some(v) = v {
        t.insert(k, Value::Text(v));
    }
}

fn put_date(t: &mut Truth, k: &'static str, v: Option<String>) {
    if let Some(d) = v.and_then(|v| {
        let digits: String = v.chars().filter(char::is_ascii_digit).collect();
        NaiveDate::parse_from_str(&digits, "%Y%m%d").ok()
    }) {
        t.insert(k, Value::Date(d));
    }
}

fn put_cents(t: &mut Truth, k: &'static str, v: Option<String>) {
    if let Some(c) = v.as_deref().and_then(decimal_cents) {
        t.insert(k, Value::Cents(c));
    }
}

/// `"1234.5"` → 123450; `None` when not a plain decimal or not whole cents.
fn decimal_cents(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 2 {
        return None;
    }
    let cents: i64 = int.parse::<i64>().ok()?.checked_mul(100)? + format!("{frac:0<2}").parse::<i64>().ok()?;
    Some(if neg { -cents } else { cents })
}

fn ubl_truth(root: Node<'_, '_>, t: &mut Truth) {
    let currency = xml::text_at(root, &["DocumentCurrencyCode"]);
    put_text(t, "invoice_number", xml::text_at(root, &["ID"]));
    put_date(t, "issue_date", xml::text_at(root, &["IssueDate"]));
    put_date(
        t,
        "due_date",
        xml::text_at(root, &["DueDate"]).or_else(|| xml::text_at(root, &["PaymentMeans", "PaymentDueDate"])),
    );
    put_text(t, "currency", currency.clone());
    put_cents(t, "net_amount", xml::text_at(root, &["LegalMonetaryTotal", "TaxExclusiveAmount"]));
    put_cents(t, "total_amount", xml::text_at(root, &["LegalMonetaryTotal", "TaxInclusiveAmount"]));
    let vat = xml::children(root, "TaxTotal")
        .filter_map(|tt| xml::child(tt, "TaxAmount"))
        .find(|a| currency.is_none() || a.attribute("currencyID") == currency.as_deref())
        .and_then(xml::text_of);
    put_cents(t, "vat_amount", vat);
    let party = xml::path(root, &["AccountingSupplierParty", "Party"]);
    put_text(t, "supplier", party.and_then(|p| xml::text_at(p, &["PartyLegalEntity", "RegistrationName"])));
    let vat_id = party.and_then(|p| {
        xml::children(p, "PartyTaxScheme")
            .find(|s| xml::text_at(*s, &["TaxScheme", "ID"]).is_some_and(|id| id.eq_ignore_ascii_case("VAT")))
            .and_then(|s| xml::text_at(s, &["CompanyID"]))
    });
    put_text(t, "vat_id", vat_id.map(|v| compact(&v)));
    let iban = xml::children(root, "PaymentMeans").find_map(|pm| xml::text_at(pm, &["PayeeFinancialAccount", "ID"]));
    put_text(t, "iban", iban.map(|v| compact(&v)));
}

fn cii_truth(root: Node<'_, '_>, t: &mut Truth, v1: bool) {
    let (header, tx, agreement, settlement, summation) = if v1 {
        (
            "HeaderExchangedDocument",
            "SpecifiedSupplyChainTradeTransaction",
            "ApplicableSupplyChainTradeAgreement",
            "ApplicableSupplyChainTradeSettlement",
            "SpecifiedTradeSettlementMonetarySummation",
        )
    } else {
        (
            "ExchangedDocument",
            "SupplyChainTradeTransaction",
            "ApplicableHeaderTradeAgreement",
            "ApplicableHeaderTradeSettlement",
            "SpecifiedTradeSettlementHeaderMonetarySummation",
        )
    };
    put_text(t, "invoice_number", xml::text_at(root, &[header, "ID"]));
    put_date(t, "issue_date", xml::text_at(root, &[header, "IssueDateTime"]));
    let Some(settle) = xml::path(root, &[tx, settlement]) else { return };
    let currency = xml::text_at(settle, &["InvoiceCurrencyCode"]);
    put_text(t, "currency", currency.clone());
    put_date(
        t,
        "due_date",
        xml::children(settle, "SpecifiedTradePaymentTerms").find_map(|pt| xml::text_at(pt, &["DueDateDateTime"])),
    );
    if let Some(sum) = xml::child(settle, summation) {
        put_cents(t, "net_amount", xml::text_at(sum, &["TaxBasisTotalAmount"]));
        let vat = xml::children(sum, "TaxTotalAmount")
            .find(|a| {
                a.attribute("currencyID").is_none()
                    || currency.is_none()
                    || a.attribute("currencyID") == currency.as_deref()
            })
            .and_then(xml::text_of);
        put_cents(t, "vat_amount", vat);
        put_cents(t, "total_amount", xml::text_at(sum, &["GrandTotalAmount"]));
    }
    let seller = xml::path(root, &[tx, agreement, "SellerTradeParty"]);
    put_text(t, "supplier", seller.and_then(|s| xml::text_at(s, &["Name"])));
    let vat_id = seller.and_then(|s| {
        xml::children(s, "SpecifiedTaxRegistration")
            .filter_map(|r| xml::child(r, "ID"))
            .find(|id| id.attribute("schemeID") == Some("VA"))
            .and_then(xml::text_of)
    });
    put_text(t, "vat_id", vat_id.map(|v| compact(&v)));
    let iban = xml::children(settle, "SpecifiedTradeSettlementPaymentMeans")
        .find_map(|pm| xml::text_at(pm, &["PayeePartyCreditorFinancialAccount", "IBANID"]));
    put_text(t, "iban", iban.map(|v| compact(&v)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_to_cents() {
        assert_eq!(decimal_cents("1234.5"), Some(123_450));
        assert_eq!(decimal_cents("-0.01"), Some(-1));
        assert_eq!(decimal_cents("100.0000"), Some(10_000));
        assert_eq!(decimal_cents("1.005"), None);
        assert_eq!(decimal_cents("1,00"), None);
    }
}

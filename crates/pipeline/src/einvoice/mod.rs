//! Structured e-invoices (EN 16931), read exactly: UBL 2.1 (`Invoice`,
//! `CreditNote`) and UN/CEFACT CII (ZUGFeRD 1.0's `CrossIndustryDocument`
//! and its pre-release `CBFBUY` form; D16B `CrossIndustryInvoice` as used by
//! ZUGFeRD 2.x, Factur-X and XRechnung), bare or embedded in a PDF.
//!
//! Each business term is read from the element the syntax binding of
//! EN 16931 (CEN/TS 16931-3-2 for UBL, -3-3 for CII) puts it in. Amounts are
//! exact decimals; a document is refused (and the caller falls back to its
//! visible text) when it is not well-formed, over the limits, not an
//! invoice of either syntax, or has an amount that is not a decimal. An
//! invoice that lacks some of what every EN 16931 invoice has (a number
//! BT-1, an issue date BT-2, a currency BT-5, a total BT-112) is read, and
//! says what it lacks in [`EInvoice::missing`]: the caller takes those from
//! the visible text (ZUGFeRD 1.0 producers left out the currency).

pub mod attachment;
pub mod xml;

use chrono::NaiveDate;
use roxmltree::Node;
use serde::{Deserialize, Serialize};

use crate::classify::DocumentType;
use crate::parse::Amount;

/// The XML syntax of an e-invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Syntax {
    Cii,
    Ubl,
}

/// One invoice line (BG-25).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// BT-153 item name.
    pub name: Option<String>,
    /// BT-129 invoiced quantity, as a decimal string.
    pub quantity: Option<String>,
    /// BT-130 unit of measure (UN/ECE Rec. 20 code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_code: Option<String>,
    /// BT-146 item net price, as a decimal string (may have more than two
    /// decimals).
    pub net_price: Option<String>,
    /// BT-131 line net amount.
    pub line_total: Option<String>,
}

/// The business terms the pipeline reads from an EN 16931 invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EInvoice {
    pub syntax: Syntax,
    /// BT-1.
    pub number: Option<String>,
    /// BT-2.
    pub issue_date: Option<NaiveDate>,
    /// BT-3 (UNTDID 1001: 380 invoice, 381 credit note, ...).
    pub type_code: Option<String>,
    /// BT-5.
    pub currency: Option<String>,
    /// BT-9.
    pub due_date: Option<NaiveDate>,
    /// BT-27.
    pub seller_name: Option<String>,
    /// BT-31, compact.
    pub seller_vat_id: Option<String>,
    /// BT-44.
    pub buyer_name: Option<String>,
    /// BT-84, compact: the first payment account.
    pub iban: Option<String>,
    /// BT-109.
    pub net_amount: Option<Amount>,
    /// BT-110 (in the invoice currency).
    pub vat_amount: Option<Amount>,
    /// BT-112.
    pub total_amount: Option<Amount>,
    /// BT-115.
    pub amount_due: Option<Amount>,
    pub lines: Vec<LineItem>,
    /// Whether the root is UBL's `CreditNote`.
    pub credit_note_root: bool,
    /// Mandatory business terms the XML lacks (`"BT-5"`, ...).
    #[serde(skip)]
    pub missing: Vec<&'static str>,
}

/// UNTDID 1001 codes of credit notes among the EN 16931 invoice types.
const CREDIT_NOTE_CODES: &[&str] = &["81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"];

impl EInvoice {
    /// The document type BT-3 (or UBL's root) says.
    pub fn document_type(&self) -> DocumentType {
        let credit = self.credit_note_root || self.type_code.as_deref().is_some_and(|c| CREDIT_NOTE_CODES.contains(&c));
        if credit { DocumentType::CreditNote } else { DocumentType::Invoice }
    }
}

const UBL_INVOICE_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const UBL_CREDIT_NOTE_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";

/// Whether bytes look like an e-invoice root worth parsing (cheap check on
/// the root element, after parsing).
pub fn read(bytes: &[u8]) -> Result<EInvoice, String> {
    let doc = xml::parse(bytes)?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    match root.tag_name().name() {
        "Invoice" if ns == UBL_INVOICE_NS => read_ubl(root, false),
        "CreditNote" if ns == UBL_CREDIT_NOTE_NS => read_ubl(root, true),
        "CrossIndustryInvoice" => read_cii(root, CiiVersion::D16b),
        "CrossIndustryDocument" => read_cii(root, CiiVersion::Zugferd1),
        // The pre-release ZUGFeRD schema (`urn:un:unece:uncefact:data:standard:CBFBUY:5`):
        // ZUGFeRD 1.0's structure under an `Invoice` root.
        "Invoice" if xml::child(root, "HeaderExchangedDocument").is_some() => read_cii(root, CiiVersion::Zugferd1),
        other => Err(format!("not an EN 16931 invoice: root element {other} in namespace {ns:?}")),
    }
}

/// A decimal as exact cents; more than two decimals are rounded half away
/// from zero (EN 16931 allows two for document amounts).
pub fn decimal_amount(s: &str) -> Option<Amount> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 15
    {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut cents = int.checked_mul(100)?;
    let f = frac.as_bytes();
    let digit = |i: usize| f.get(i).map_or(0, |b| i64::from(b - b'0'));
    cents += digit(0) * 10 + digit(1);
    if digit(2) >= 5 {
        cents += 1;
    }
    Some(Amount::from_cents(if neg { -cents } else { cents }))
}

/// A decimal string with at least `min` decimals and no needless trailing
/// zeros beyond them (`"9.9000"` → `"9.90"` with 2, `"20.0000"` → `"20"` with 0).
fn decimal_string(s: &str, min: usize) -> Option<String> {
    let s = s.trim();
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let sign = if s.starts_with('-') { "-" } else { "" };
    let frac = format!("{frac:0<min$}");
    Some(if frac.is_empty() { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") })
}

/// `20260301` (CII format 102), `2026-03-01` (UBL), also with a time.
fn parse_xml_date(s: &str) -> Option<NaiveDate> {
    let digits: String =
        s.trim().chars().take_while(|c| c.is_ascii_digit() || *c == '-').filter(char::is_ascii_digit).collect();
    if digits.len() < 8 {
        return None;
    }
    NaiveDate::parse_from_str(&digits[..8], "%Y%m%d").ok()
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_uppercase()
}

fn required<T>(value: Option<T>, what: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("invalid EN 16931 invoice: {what} is missing or unreadable"))
}

/// The mandatory terms (BT-1, BT-2, BT-5, BT-112) that are absent. None
/// of them at all is not an invoice worth reading.
fn check_mandatory(inv: &mut EInvoice) -> Result<(), String> {
    let present = [
        ("BT-1", inv.number.is_some()),
        ("BT-2", inv.issue_date.is_some()),
        ("BT-5", inv.currency.is_some()),
        ("BT-112", inv.total_amount.is_some()),
    ];
    inv.missing = present.iter().filter(|(_, p)| !p).map(|(bt, _)| *bt).collect();
    if inv.missing.len() == present.len() {
        return Err("invalid EN 16931 invoice: no number, issue date, currency or total".to_owned());
    }
    Ok(())
}

/// An amount element in the invoice currency: of several (CII allows BT-110
/// twice, once in the accounting currency), the one whose `currencyID` is
/// the invoice's or that has none.
fn amount_in<'a, 'i: 'a>(
    mut candidates: impl Iterator<Item = Node<'a, 'i>>,
    currency: Option<&str>,
) -> Result<Option<Amount>, String> {
    let node = candidates.find(|n| match (n.attribute("currencyID"), currency) {
        (Some(c), Some(currency)) => c.trim().eq_ignore_ascii_case(currency),
        _ => true,
    });
    amount_of(node)
}

fn amount_of(node: Option<Node<'_, '_>>) -> Result<Option<Amount>, String> {
    match node.and_then(xml::text_of) {
        None => Ok(None),
        Some(t) => decimal_amount(&t).map(Some).ok_or_else(|| {
            format!("invalid EN 16931 invoice: {} is not a decimal: {t:?}", node.map_or("", |n| n.tag_name().name()))
        }),
    }
}

fn read_ubl(root: Node<'_, '_>, credit_note: bool) -> Result<EInvoice, String> {
    let currency = xml::text_at(root, &["DocumentCurrencyCode"]).map(|c| c.to_uppercase());
    let type_code = xml::text_at(root, &[if credit_note { "CreditNoteTypeCode" } else { "InvoiceTypeCode" }]);
    let totals = xml::child(root, "LegalMonetaryTotal");
    let total = |name: &str| totals.and_then(|t| xml::child(t, name));
    let supplier = xml::path(root, &["AccountingSupplierParty", "Party"]);
    let buyer = xml::path(root, &["AccountingCustomerParty", "Party"]);
    let party_name = |p: Option<Node<'_, '_>>| {
        p.and_then(|p| {
            xml::text_at(p, &["PartyLegalEntity", "RegistrationName"])
                .or_else(|| xml::text_at(p, &["PartyName", "Name"]))
        })
    };
    let vat_id = supplier.and_then(|p| {
        xml::children(p, "PartyTaxScheme")
            .find(|s| xml::text_at(*s, &["TaxScheme", "ID"]).is_some_and(|id| id.eq_ignore_ascii_case("VAT")))
            .and_then(|s| xml::text_at(s, &["CompanyID"]))
    });
    let iban = xml::children(root, "PaymentMeans").find_map(|pm| xml::text_at(pm, &["PayeeFinancialAccount", "ID"]));
    let line_name = if credit_note { "CreditNoteLine" } else { "InvoiceLine" };
    let quantity_name = if credit_note { "CreditedQuantity" } else { "InvoicedQuantity" };
    let lines = xml::children(root, line_name)
        .map(|l| {
            let qty = xml::child(l, quantity_name);
            LineItem {
                name: xml::text_at(l, &["Item", "Name"]),
                quantity: qty.and_then(xml::text_of).and_then(|q| decimal_string(&q, 0)),
                unit_code: qty.and_then(|q| q.attribute("unitCode")).map(str::to_owned),
                net_price: xml::text_at(l, &["Price", "PriceAmount"]).and_then(|p| decimal_string(&p, 2)),
                line_total: xml::text_at(l, &["LineExtensionAmount"]).and_then(|p| decimal_string(&p, 2)),
            }
        })
        .collect();
    let mut inv = EInvoice {
        syntax: Syntax::Ubl,
        number: xml::text_at(root, &["ID"]),
        issue_date: xml::text_at(root, &["IssueDate"]).and_then(|d| parse_xml_date(&d)),
        type_code,
        due_date: xml::text_at(root, &["DueDate"])
            .or_else(|| xml::children(root, "PaymentMeans").find_map(|pm| xml::text_at(pm, &["PaymentDueDate"])))
            .and_then(|d| parse_xml_date(&d)),
        seller_name: party_name(supplier),
        seller_vat_id: vat_id.map(|v| compact(&v)),
        buyer_name: party_name(buyer),
        iban: iban.map(|v| compact(&v)),
        net_amount: amount_of(total("TaxExclusiveAmount"))?,
        vat_amount: amount_in(
            xml::children(root, "TaxTotal").filter_map(|t| xml::child(t, "TaxAmount")),
            currency.as_deref(),
        )?,
        total_amount: amount_of(total("TaxInclusiveAmount"))?,
        amount_due: amount_of(total("PayableAmount"))?,
        lines,
        credit_note_root: credit_note,
        currency,
        missing: Vec::new(),
    };
    check_mandatory(&mut inv)?;
    Ok(inv)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CiiVersion {
    /// ZUGFeRD 1.0 (`urn:ferd:CrossIndustryDocument:invoice:1p0`).
    Zugferd1,
    /// UN/CEFACT D16B: ZUGFeRD 2.x, Factur-X, XRechnung CII.
    D16b,
}

struct CiiNames {
    header: &'static str,
    transaction: &'static str,
    line_item: &'static str,
    agreement: &'static str,
    settlement: &'static str,
    summation: &'static str,
    line_agreement: &'static str,
    line_delivery: &'static str,
    line_settlement: &'static str,
    line_summation: &'static str,
}

const D16B: CiiNames = CiiNames {
    header: "ExchangedDocument",
    transaction: "SupplyChainTradeTransaction",
    line_item: "IncludedSupplyChainTradeLineItem",
    agreement: "ApplicableHeaderTradeAgreement",
    settlement: "ApplicableHeaderTradeSettlement",
    summation: "SpecifiedTradeSettlementHeaderMonetarySummation",
    line_agreement: "SpecifiedLineTradeAgreement",
    line_delivery: "SpecifiedLineTradeDelivery",
    line_settlement: "SpecifiedLineTradeSettlement",
    line_summation: "SpecifiedTradeSettlementLineMonetarySummation",
};

const ZUGFERD1: CiiNames = CiiNames {
    header: "HeaderExchangedDocument",
    transaction: "SpecifiedSupplyChainTradeTransaction",
    line_item: "IncludedSupplyChainTradeLineItem",
    agreement: "ApplicableSupplyChainTradeAgreement",
    settlement: "ApplicableSupplyChainTradeSettlement",
    summation: "SpecifiedTradeSettlementMonetarySummation",
    line_agreement: "SpecifiedSupplyChainTradeAgreement",
    line_delivery: "SpecifiedSupplyChainTradeDelivery",
    line_settlement: "SpecifiedSupplyChainTradeSettlement",
    line_summation: "SpecifiedTradeSettlementMonetarySummation",
};

fn read_cii(root: Node<'_, '_>, version: CiiVersion) -> Result<EInvoice, String> {
    let n = if version == CiiVersion::D16b { &D16B } else { &ZUGFERD1 };
    let header = required(xml::child(root, n.header), "the document header")?;
    let tx = required(xml::child(root, n.transaction), "the trade transaction")?;
    let settlement = required(xml::child(tx, n.settlement), "the trade settlement")?;
    let agreement = xml::child(tx, n.agreement);
    let currency = xml::text_at(settlement, &["InvoiceCurrencyCode"]).map(|c| c.to_uppercase());
    let sum = xml::child(settlement, n.summation);
    let sum_child = |name: &str| sum.and_then(|s| xml::child(s, name));
    let seller = agreement.and_then(|a| xml::child(a, "SellerTradeParty"));
    let buyer = agreement.and_then(|a| xml::child(a, "BuyerTradeParty"));
    let vat_id = seller.and_then(|s| {
        xml::children(s, "SpecifiedTaxRegistration")
            .filter_map(|r| xml::child(r, "ID"))
            .find(|id| id.attribute("schemeID") == Some("VA"))
            .and_then(xml::text_of)
    });
    let iban = xml::children(settlement, "SpecifiedTradeSettlementPaymentMeans")
        .find_map(|pm| xml::text_at(pm, &["PayeePartyCreditorFinancialAccount", "IBANID"]));
    let due = xml::children(settlement, "SpecifiedTradePaymentTerms")
        .find_map(|pt| xml::child(pt, "DueDateDateTime").and_then(xml::text_of))
        .and_then(|d| parse_xml_date(&d));
    let lines = xml::children(tx, n.line_item)
        .map(|l| {
            let qty = xml::child(l, n.line_delivery).and_then(|d| xml::child(d, "BilledQuantity"));
            LineItem {
                name: xml::text_at(l, &["SpecifiedTradeProduct", "Name"]),
                quantity: qty.and_then(xml::text_of).and_then(|q| decimal_string(&q, 0)),
                unit_code: qty.and_then(|q| q.attribute("unitCode")).map(str::to_owned),
                net_price: xml::text_at(l, &[n.line_agreement, "NetPriceProductTradePrice", "ChargeAmount"])
                    .and_then(|p| decimal_string(&p, 2)),
                line_total: xml::text_at(l, &[n.line_settlement, n.line_summation, "LineTotalAmount"])
                    .and_then(|p| decimal_string(&p, 2)),
            }
        })
        .collect();
    let mut inv = EInvoice {
        syntax: Syntax::Cii,
        number: xml::text_at(header, &["ID"]),
        issue_date: xml::child(header, "IssueDateTime").and_then(xml::text_of).and_then(|d| parse_xml_date(&d)),
        type_code: xml::text_at(header, &["TypeCode"]),
        due_date: due,
        seller_name: seller.and_then(|s| xml::text_at(s, &["Name"])),
        seller_vat_id: vat_id.map(|v| compact(&v)),
        buyer_name: buyer.and_then(|b| xml::text_at(b, &["Name"])),
        iban: iban.map(|v| compact(&v)),
        net_amount: amount_of(sum_child("TaxBasisTotalAmount"))?,
        vat_amount: amount_in(sum.into_iter().flat_map(|s| xml::children(s, "TaxTotalAmount")), currency.as_deref())?,
        total_amount: amount_of(sum_child("GrandTotalAmount"))?,
        amount_due: amount_of(sum_child("DuePayableAmount"))?,
        lines,
        credit_note_root: false,
        currency,
        missing: Vec::new(),
    };
    check_mandatory(&mut inv)?;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(decimal_amount("1234.5"), Some(Amount::from_cents(123_450)));
        assert_eq!(decimal_amount("-0.01"), Some(Amount::from_cents(-1)));
        assert_eq!(decimal_amount("1.005"), Some(Amount::from_cents(101)));
        assert_eq!(decimal_amount("1,00"), None);
        assert_eq!(decimal_amount(""), None);
        assert_eq!(decimal_string("9.9000", 2).as_deref(), Some("9.90"));
        assert_eq!(decimal_string("198", 2).as_deref(), Some("198.00"));
        assert_eq!(decimal_string("20.0000", 0).as_deref(), Some("20"));
        assert_eq!(decimal_string("1.2345", 2).as_deref(), Some("1.2345"));
        assert_eq!(parse_xml_date("20180305"), NaiveDate::from_ymd_opt(2018, 3, 5));
        assert_eq!(parse_xml_date("2018-03-05"), NaiveDate::from_ymd_opt(2018, 3, 5));
    }
}

/// The outcome of looking for e-invoice XML in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructuredRead {
    /// The PDF attachment the XML came from; `None` for a bare XML document.
    pub attachment: Option<String>,
    /// The invoice, or why its XML cannot be used.
    pub invoice: Result<EInvoice, String>,
}

/// The e-invoice embedded in a PDF, if it carries one.
pub fn from_pdf(doc: &lopdf::Document) -> Option<StructuredRead> {
    let found = crate::pdf::guarded(|| attachment::invoice_xml(doc)).unwrap_or_else(|why| Some(Err(why)))?;
    Some(match found {
        Ok(a) => {
            StructuredRead { invoice: read(&a.data).map_err(|e| format!("{}: {e}", a.name)), attachment: Some(a.name) }
        }
        Err(why) => StructuredRead { attachment: None, invoice: Err(why) },
    })
}

/// A bare XML document read as an e-invoice. `None` when it is not one
/// (another XML vocabulary, or not parseable at all: it is then read as
/// text, as any XML); an error when its root is an e-invoice's but the
/// invoice is invalid.
pub fn from_xml(bytes: &[u8]) -> Option<StructuredRead> {
    match read(bytes) {
        Ok(inv) => Some(StructuredRead { attachment: None, invoice: Ok(inv) }),
        Err(why) if why.starts_with("invalid EN 16931") => Some(StructuredRead { attachment: None, invoice: Err(why) }),
        Err(_) => None,
    }
}

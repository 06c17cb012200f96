//! Invoice fields from text: labels in English, German, French, Dutch,
//! Spanish, Italian and Polish, values read with the parsers in `parse`.
//!
//! The text is read line by line. On each line the labels are found
//! (longest match wins, so "Total excl. VAT" is a net label, not a total
//! and a VAT label), and each value on the line belongs to the nearest label
//! before it. A label alone at the end of a line takes its value from the
//! next line (table layouts). Among several candidates for a field the most
//! specific label wins ("Invoice date" over "Date", "Amount due" over
//! "Total").

use std::sync::LazyLock;

use chrono::{Days, NaiveDate};
use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};

use crate::parse::amount::{Amount, find_amounts};
use crate::parse::date::find_dates;
use crate::parse::iban::find_ibans;
use crate::parse::mask;
use crate::parse::vat_id::{VatCheck, find_vat_ids, find_vat_ids_lenient};

/// Where a field's value was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// UN/CEFACT CII XML (ZUGFeRD, Factur-X, XRechnung CII), exact.
    Cii,
    /// UBL 2.1 XML, exact.
    Ubl,
    /// The visible text of a PDF.
    PdfText,
    /// A text document (plain text, CSV, XML that is not an e-invoice).
    #[default]
    Text,
}

/// A value, how sure the analysis is of it (0..1), and where it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field<T> {
    pub value: T,
    pub confidence: f64,
    #[serde(default)]
    pub source: Source,
}

impl<T> Field<T> {
    /// A value guessed from text (the source is set by the caller that knows
    /// what the text came from, see [`InvoiceFields::set_text_source`]).
    pub fn new(value: T, confidence: f64) -> Self {
        Field { value, confidence: (confidence * 100.0).round() / 100.0, source: Source::Text }
    }

    /// A value read from structured XML: exact, confidence 1.0.
    pub fn exact(value: T, source: Source) -> Self {
        Field { value, confidence: 1.0, source }
    }
}

/// What a structured e-invoice contributed to the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructuredOrigin {
    pub syntax: crate::einvoice::Syntax,
    /// The PDF attachment the XML came from (`factur-x.xml`, ...); `None`
    /// for a bare XML document.
    pub attachment: Option<String>,
    /// BT-3 invoice type code.
    pub type_code: Option<String>,
}

/// The fields analysis looks for. Every one is optional: a receipt has no
/// due date, a scanned image has nothing until OCR.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvoiceFields {
    pub invoice_number: Option<Field<String>>,
    pub issue_date: Option<Field<NaiveDate>>,
    pub due_date: Option<Field<NaiveDate>>,
    pub net_amount: Option<Field<Amount>>,
    pub vat_amount: Option<Field<Amount>>,
    pub total_amount: Option<Field<Amount>>,
    /// ISO 4217 code.
    pub currency: Option<Field<String>>,
    /// Compact form, checksum verified.
    pub iban: Option<Field<String>>,
    /// Compact form with country prefix (`DE136695976`).
    pub vat_id: Option<Field<String>>,
    pub supplier: Option<Field<String>>,
    /// BT-44 buyer name (structured e-invoices only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer: Option<Field<String>>,
    /// BT-115 amount due for payment (structured e-invoices only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_due: Option<Field<Amount>>,
    /// BG-25 invoice lines (structured e-invoices only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub line_items: Vec<crate::einvoice::LineItem>,
    /// Set when the fields were read from e-invoice XML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<StructuredOrigin>,
    /// Why e-invoice XML that the document carries was not used (broken,
    /// invalid, over a limit): the fields then come from the visible text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_error: Option<String>,
}

/// Names of the fields, as used in rule files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldName {
    InvoiceNumber,
    IssueDate,
    DueDate,
    NetAmount,
    VatAmount,
    TotalAmount,
    Currency,
    Iban,
    VatId,
    Supplier,
}

impl FieldName {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldName::InvoiceNumber => "invoice_number",
            FieldName::IssueDate => "issue_date",
            FieldName::DueDate => "due_date",
            FieldName::NetAmount => "net_amount",
            FieldName::VatAmount => "vat_amount",
            FieldName::TotalAmount => "total_amount",
            FieldName::Currency => "currency",
            FieldName::Iban => "iban",
            FieldName::VatId => "vat_id",
            FieldName::Supplier => "supplier",
        }
    }
}

impl InvoiceFields {
    /// The exact fields of a structured e-invoice.
    pub fn from_einvoice(inv: &crate::einvoice::EInvoice, attachment: Option<String>) -> Self {
        let source = match inv.syntax {
            crate::einvoice::Syntax::Cii => Source::Cii,
            crate::einvoice::Syntax::Ubl => Source::Ubl,
        };
        let exact = |v| Field::exact(v, source);
        InvoiceFields {
            invoice_number: inv.number.clone().map(exact),
            issue_date: inv.issue_date.map(|d| Field::exact(d, source)),
            due_date: inv.due_date.map(|d| Field::exact(d, source)),
            net_amount: inv.net_amount.map(|a| Field::exact(a, source)),
            vat_amount: inv.vat_amount.map(|a| Field::exact(a, source)),
            total_amount: inv.total_amount.map(|a| Field::exact(a, source)),
            currency: inv.currency.clone().map(exact),
            iban: inv.iban.clone().map(exact),
            vat_id: inv.seller_vat_id.clone().map(exact),
            supplier: inv.seller_name.clone().map(exact),
            buyer: inv.buyer_name.clone().map(exact),
            amount_due: inv.amount_due.map(|a| Field::exact(a, source)),
            line_items: inv.lines.clone(),
            structured: Some(StructuredOrigin { syntax: inv.syntax, attachment, type_code: inv.type_code.clone() }),
            structured_error: None,
        }
    }

    /// Takes the mandatory terms of EN 16931 (number, issue date, currency,
    /// total) that these fields lack from `other`.
    pub fn fill_missing_mandatory(&mut self, other: InvoiceFields) {
        self.invoice_number = self.invoice_number.take().or(other.invoice_number);
        self.issue_date = self.issue_date.take().or(other.issue_date);
        self.currency = self.currency.take().or(other.currency);
        self.total_amount = self.total_amount.take().or(other.total_amount);
    }

    /// Marks every field found in text as read from `source` (`PdfText` for
    /// a PDF's visible text).
    pub fn set_text_source(&mut self, source: Source) {
        fn set<T>(f: &mut Option<Field<T>>, source: Source) {
            if let Some(f) = f
                && matches!(f.source, Source::Text | Source::PdfText)
            {
                f.source = source;
            }
        }
        set(&mut self.invoice_number, source);
        set(&mut self.issue_date, source);
        set(&mut self.due_date, source);
        set(&mut self.net_amount, source);
        set(&mut self.vat_amount, source);
        set(&mut self.total_amount, source);
        set(&mut self.currency, source);
        set(&mut self.iban, source);
        set(&mut self.vat_id, source);
        set(&mut self.supplier, source);
        set(&mut self.buyer, source);
        set(&mut self.amount_due, source);
    }

    pub fn is_present(&self, field: FieldName) -> bool {
        match field {
            FieldName::InvoiceNumber => self.invoice_number.is_some(),
            FieldName::IssueDate => self.issue_date.is_some(),
            FieldName::DueDate => self.due_date.is_some(),
            FieldName::NetAmount => self.net_amount.is_some(),
            FieldName::VatAmount => self.vat_amount.is_some(),
            FieldName::TotalAmount => self.total_amount.is_some(),
            FieldName::Currency => self.currency.is_some(),
            FieldName::Iban => self.iban.is_some(),
            FieldName::VatId => self.vat_id.is_some(),
            FieldName::Supplier => self.supplier.is_some(),
        }
    }

    /// How many fields were found.
    pub fn count(&self) -> usize {
        [
            FieldName::InvoiceNumber,
            FieldName::IssueDate,
            FieldName::DueDate,
            FieldName::NetAmount,
            FieldName::VatAmount,
            FieldName::TotalAmount,
            FieldName::Currency,
            FieldName::Iban,
            FieldName::VatId,
            FieldName::Supplier,
        ]
        .into_iter()
        .filter(|f| self.is_present(*f))
        .count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    InvoiceNumber,
    IssueDate,
    DueDate,
    Net,
    Vat,
    Total,
    VatId,
    Iban,
    Supplier,
    Customer,
    /// Recognised so that its words are not read as another label
    /// ("Delivery date" is not the invoice date, "Net 30" not a net amount).
    Ignore,
}

/// (label, strength, pattern). Strength ranks labels of one kind: 2 for a
/// specific label, 1 for a generic one.
const LABELS: &[(Label, u8, &str)] = &[
    (Label::InvoiceNumber, 2, r"invoice\s*(?:no\.?|number|nr\.?|num\.?|#|id)"),
    (Label::InvoiceNumber, 2, r"inv\.?\s*(?:no\.?|#)"),
    (Label::InvoiceNumber, 2, r"rechnungs\s*-?\s*(?:nummer|nr\.?|no\.?)"),
    (Label::InvoiceNumber, 2, r"rechnung\s+(?:nr\.?|no\.?|nummer)"),
    (Label::InvoiceNumber, 2, r"gutschrifts?\s*-?\s*(?:nummer|nr\.?)"),
    (Label::InvoiceNumber, 2, r"facture\s*(?:n[°ºo]\.?|num[ée]ro)"),
    (Label::InvoiceNumber, 2, r"num[ée]ro\s+de\s+(?:la\s+)?facture"),
    (Label::InvoiceNumber, 2, r"n[°º]\s*(?:de\s+)?facture"),
    (Label::InvoiceNumber, 2, r"factuur\s*-?\s*(?:nummer|nr\.?|no\.?)"),
    (Label::InvoiceNumber, 2, r"credit\s*note\s*(?:no\.?|number|#)"),
    (Label::InvoiceNumber, 2, r"credit\s*nota\s*-?\s*(?:nummer|nr\.?)"),
    (Label::InvoiceNumber, 1, r"receipt\s*(?:no\.?|number|#)"),
    (Label::InvoiceNumber, 1, r"(?:document|beleg)\s*-?\s*(?:no\.?|number|nummer|nr\.?)"),
    (Label::IssueDate, 2, r"invoice\s+date"),
    (Label::IssueDate, 2, r"date\s+of\s+(?:issue|invoice)"),
    (Label::IssueDate, 2, r"issue\s+date"),
    (Label::IssueDate, 2, r"issued\s+on"),
    (Label::IssueDate, 2, r"rechnungsdatum"),
    (Label::IssueDate, 2, r"ausstellungsdatum"),
    (Label::IssueDate, 2, r"date\s+de\s+(?:la\s+)?facture"),
    (Label::IssueDate, 2, r"date\s+d['’][ée]mission"),
    (Label::IssueDate, 2, r"factuurdatum"),
    (Label::IssueDate, 1, r"date"),
    (Label::IssueDate, 1, r"datum"),
    (Label::IssueDate, 1, r"vom"),
    (Label::DueDate, 2, r"due\s+date"),
    (Label::DueDate, 2, r"payment\s+due(?:\s+date)?"),
    (Label::DueDate, 2, r"due\s+(?:on|by)"),
    (Label::DueDate, 2, r"pay(?:able)?\s+by"),
    (Label::DueDate, 2, r"f[äa]lligkeitsdatum"),
    (Label::DueDate, 2, r"f[äa]llig(?:\s+(?:am|bis))?"),
    (Label::DueDate, 2, r"zahlbar\s+bis"),
    (Label::DueDate, 2, r"date\s+d['’][ée]ch[ée]ance"),
    (Label::DueDate, 2, r"[ée]ch[ée]ance"),
    (Label::DueDate, 2, r"[àa]\s+payer\s+avant\s+le"),
    (Label::DueDate, 2, r"vervaldatum"),
    (Label::DueDate, 2, r"uiterste\s+betaaldatum"),
    (Label::DueDate, 2, r"te\s+betalen\s+voor"),
    (Label::DueDate, 1, r"due"),
    (Label::Net, 2, r"sub\s*-?\s*total"),
    (Label::Net, 2, r"net\s+(?:amount|total|value)"),
    (Label::Net, 2, r"total\s+(?:excl\.?|excluding|before|net|ex\.?)(?:\s+(?:of\s+)?(?:vat|tax))?"),
    (Label::Net, 2, r"amount\s+(?:excl\.?|excluding|before)\s+(?:vat|tax)"),
    (Label::Net, 2, r"tax\s*exclusive\s+amount"),
    (Label::Net, 2, r"nettobetrag"),
    (Label::Net, 2, r"netto\s*-?\s*(?:summe|betrag|gesamt)"),
    (Label::Net, 2, r"zwischensumme"),
    (Label::Net, 2, r"(?:summe|gesamt)\s+netto"),
    (Label::Net, 2, r"(?:total|montant)\s+h\.?t\.?"),
    (Label::Net, 2, r"sous\s*-?\s*total"),
    (Label::Net, 2, r"subtotaal"),
    (Label::Net, 2, r"(?:totaal|bedrag)\s+excl\.?(?:\s+btw)?"),
    (Label::Net, 2, r"excl\.?\s+(?:btw|vat|mwst|tva)"),
    (Label::Net, 1, r"net"),
    (Label::Net, 1, r"netto"),
    (Label::Vat, 2, r"vat\s+amount"),
    (Label::Vat, 2, r"tax\s+amount"),
    (Label::Vat, 2, r"sales\s+tax"),
    (Label::Vat, 2, r"(?:mwst|ust)\.?\s*-?\s*betrag"),
    (Label::Vat, 2, r"montant\s+(?:de\s+la\s+)?tva"),
    (Label::Vat, 2, r"btw\s*-?\s*bedrag"),
    (Label::Vat, 1, r"vat"),
    (Label::Vat, 1, r"tax"),
    (Label::Vat, 1, r"mwst\.?"),
    (Label::Vat, 1, r"ust\.?"),
    (Label::Vat, 1, r"umsatzsteuer"),
    (Label::Vat, 1, r"mehrwertsteuer"),
    (Label::Vat, 1, r"tva"),
    (Label::Vat, 1, r"btw"),
    (Label::Vat, 1, r"gst"),
    (Label::Total, 2, r"total\s+(?:amount\s+)?due"),
    (Label::Total, 2, r"amount\s+due"),
    (Label::Total, 2, r"balance\s+due"),
    (Label::Total, 3, r"grand\s+total"),
    (Label::Total, 3, r"total\s+(?:incl\.?|including|inc\.?)(?:\s+(?:of\s+)?(?:vat|tax))?"),
    (Label::Total, 2, r"(?:amount|total)\s+payable"),
    (Label::Total, 2, r"payable\s+amount"),
    (Label::Total, 3, r"gesamtbetrag"),
    (Label::Total, 3, r"rechnungsbetrag"),
    (Label::Total, 3, r"gutschriftsbetrag"),
    (Label::Total, 3, r"endbetrag"),
    (Label::Total, 3, r"bruttobetrag"),
    (Label::Total, 3, r"gesamtsumme"),
    (Label::Total, 3, r"(?:summe|gesamt)\s+brutto"),
    (Label::Total, 2, r"zu\s+zahlen(?:der\s+betrag)?"),
    (Label::Total, 3, r"(?:total|montant)\s+t\.?t\.?c\.?"),
    (Label::Total, 2, r"net\s+[àa]\s+payer"),
    (Label::Total, 2, r"montant\s+d[ûu]"),
    (Label::Total, 3, r"totaal\s+incl\.?(?:\s+btw)?"),
    (Label::Total, 3, r"totaalbedrag"),
    (Label::Total, 2, r"te\s+betalen(?:\s+bedrag)?"),
    (Label::Total, 1, r"total"),
    (Label::Total, 1, r"summe"),
    (Label::Total, 1, r"montant\s+total"),
    (Label::Total, 1, r"totaal"),
    (Label::VatId, 2, r"vat\s*(?:id|no\.?|number|reg(?:istration)?\.?(?:\s*(?:no\.?|number))?)"),
    (Label::VatId, 2, r"tax\s*id"),
    (Label::VatId, 2, r"ust\.?\s*-?\s*id\.?\s*-?\s*(?:nr\.?)?"),
    (Label::VatId, 2, r"ust\.?\s*-?\s*ident(?:ifikations)?\s*-?\s*(?:nr\.?|nummer)"),
    (Label::VatId, 2, r"umsatzsteuer\s*-?\s*identifikationsnummer"),
    (Label::VatId, 2, r"n[°º]\s*(?:de\s+)?tva(?:\s+intracommunautaire)?"),
    (Label::VatId, 2, r"num[ée]ro\s+de\s+tva(?:\s+intracommunautaire)?"),
    (Label::VatId, 2, r"tva\s+intracommunautaire"),
    (Label::VatId, 2, r"btw\s*-?\s*(?:nummer|nr\.?|id)"),
    (Label::Iban, 2, r"iban"),
    (Label::Supplier, 2, r"(?:from|supplier|seller|vendor|issued\s+by|bill\s+from|sold\s+by)"),
    (Label::Supplier, 2, r"(?:lieferant|verk[äa]ufer|rechnungssteller|absender)"),
    (Label::Supplier, 2, r"(?:fournisseur|vendeur|[ée]metteur)"),
    (Label::Supplier, 2, r"(?:leverancier|verkoper|afzender)"),
    (Label::Customer, 2, r"(?:bill(?:ed)?\s+to|ship\s+to|invoice\s+to|sold\s+to|customer|client)"),
    (Label::Customer, 2, r"(?:rechnungsempf[äa]nger|kunde|empf[äa]nger|leistungsempf[äa]nger)"),
    (Label::Customer, 2, r"(?:factur[ée]\s+[àa]|destinataire)"),
    (Label::Customer, 2, r"(?:klant|afnemer|factuuradres)"),
    (Label::Ignore, 3, r"(?:delivery|order|service|shipping)\s+date"),
    (Label::Ignore, 3, r"(?:liefer|leistungs|bestell)datum"),
    (Label::Ignore, 3, r"date\s+de\s+(?:livraison|commande)"),
    (Label::Ignore, 3, r"(?:lever|bestel)datum"),
    (Label::Ignore, 3, r"net\s+\d{1,3}(?:\s+days)?"),
    (Label::Ignore, 3, r"payment\s+terms"),
    (Label::Ignore, 3, r"zahlungsbedingungen"),
    (Label::Ignore, 3, r"conditions\s+de\s+paiement"),
    (Label::Ignore, 3, r"betalingsvoorwaarden"),
    (Label::Ignore, 3, r"(?:tax|vat)\s+rate"),
    (Label::Ignore, 3, r"(?:customer|client|kunden)\s*-?\s*(?:no\.?|number|nr\.?|nummer|id)"),
    (Label::Ignore, 3, r"(?:order|po|purchase\s+order|bestell|auftrags)\s*-?\s*(?:no\.?|number|nr\.?|nummer|#)"),
    (Label::Ignore, 3, r"(?:tel|phone|fax|telefon)\.?"),
    // A document title with its number: "Handelsrechnung (380) Nr. 471102",
    // "Rechnung des Versicherers Nr.", "Invoice # RE-1", "Gutschrift
    // (Selbst ausgestellte Rechnung) Nr.", "Facture n°", "Factura nº",
    // "Fattura n.", "Faktura VAT nr".
    (
        Label::InvoiceNumber,
        2,
        r"(?:\w*rechnung\w*|gutschrift|invoice|facture|avoir|factuur|creditnota|factura|fattura|faktura(?:\s+vat)?|nota\s+de\s+cr[ée]dito|nota\s+di\s+credito|faktura\s+korygująca)(?:\s+\p{Lu}[\p{L}\-]*)?(?:\s*\([^)\t]{1,40}\))*(?:\s+(?:des|der|du|de|del|zur|zum|für|for|of|pour)\s+\w+)?(?:\s*\([^)\t]{1,40}\))*\s*(?:nr\.?|no\.?|n[°ºo]\.?|n\.|#|nummer|number|num\.?|núm\.?|numero|número|numer)",
    ),
    (Label::InvoiceNumber, 2, r"(?:belegnummer|beleg-nr\.?|dokumentnummer)"),
    (Label::InvoiceNumber, 2, r"(?:n[úu]mero\s+de\s+factura|numero\s+(?:di\s+)?fattura|numer\s+faktury|nr\s+faktury)"),
    (Label::InvoiceNumber, 2, r"(?:invoice|bill)\s+(?:reference|ref\.?)"),
    (Label::IssueDate, 2, r"(?:belegdatum|dokumentdatum|rechnungs\s*-?\s*datum)"),
    (Label::IssueDate, 2, r"(?:issued\s+(?:at|on)|date\s+issued|invoice\s+dated|dated)"),
    (
        Label::IssueDate,
        2,
        r"(?:fecha\s+(?:de\s+)?(?:la\s+)?(?:factura|emisi[óo]n|expedici[óo]n)|data\s+(?:della\s+)?fattura|data\s+(?:di\s+)?emissione|data\s+wystawienia|data\s+faktury)",
    ),
    (Label::IssueDate, 1, r"(?:fecha|data|datum\s+faktury)"),
    (
        Label::DueDate,
        2,
        r"(?:zahlbar|zahlung|zahlungsziel|überweisen\s+sie)[^\t\d]{0,50}?\bbis(?:\s+(?:zum|spätestens))?",
    ),
    (Label::DueDate, 2, r"(?:please\s+)?(?:remit|pay(?:ment)?|payable)\s+(?:until|by|before|no\s+later\s+than)"),
    (Label::DueDate, 2, r"(?:f[äa]lligkeit|f[äa]llig\s+am|zahlungstermin)"),
    (
        Label::DueDate,
        2,
        r"(?:fecha\s+de\s+vencimiento|vencimiento|data\s+(?:di\s+)?scadenza|scadenza|termin\s+p[łl]atno[śs]ci|payable\s+le|date\s+limite\s+de\s+paiement|betalen\s+v[oó][oó]r)",
    ),
    (Label::Net, 3, r"(?:rechnungs)?summe\s+(?:ohne|exkl\.?|excl\.?|netto)(?:\s+(?:ust|mwst|umsatzsteuer)\.?)?"),
    (Label::Net, 3, r"(?:rechnungssumme|gesamtsumme|gesamtbetrag)\s+netto"),
    (
        Label::Net,
        3,
        r"(?:net\s+total|total\s+net|total\s+h\.?t\.?|montant\s+h\.?t\.?|total\s+hors\s+taxes?|base\s+imponible|imponibile|totale\s+imponibile|razem\s+netto|warto[śs][ćc]\s+netto|totaal\s+excl\.?(?:\s+btw)?)",
    ),
    (
        Label::Net,
        3,
        r"(?:total\s+(?:excl\.?|excluding|before|ex\.?|without)\s+(?:vat|tax)|amount\s+(?:excl\.?|excluding|before|without)\s+(?:vat|tax)|net\s+amount)",
    ),
    (Label::Net, 2, r"(?:nettosumme|warenwert\s+netto)"),
    (
        Label::Vat,
        2,
        r"(?:steuerbetrag|summe\s+(?:umsatzsteuer|mwst|ust)|(?:zzgl|zuzügl|zuzüglich|zzgl)\.?\s*(?:ust|mwst|umsatzsteuer)\.?|umsatzsteuerbetrag|mehrwertsteuerbetrag)",
    ),
    (
        Label::Vat,
        2,
        r"(?:vat\s+total|total\s+vat|total\s+tax(?:es)?|tax\s+total|plus\s+vat|total\s+tva|montant\s+(?:de\s+la\s+)?tva|tva\s+(?:totale|total)|total\s+iva|cuota\s+(?:de\s+)?iva|importe\s+(?:del\s+)?iva|totale\s+iva|imposta|kwota\s+vat|podatek\s+vat|razem\s+vat|btw\s+bedrag|totaal\s+btw)",
    ),
    (Label::Vat, 1, r"(?:iva|podatek)"),
    (Label::Total, 1, r"(?:brutto|totale|razem)"),
    (
        Label::Vat,
        3,
        r"(?:ust|mwst|umsatzsteuer|mehrwertsteuer|vat|tva|btw|iva)\.?\s*(?:gesamt|gesamtbetrag|summe|total|totale)",
    ),
    (
        Label::Total,
        3,
        r"(?:bruttosumme|rechnungssumme\s+brutto|summe\s+(?:inkl|incl)\.?\s*(?:ust|mwst|umsatzsteuer)\.?|gesamtbetrag\s+brutto|rechnungsbetrag\s+brutto|total\s+amount|invoice\s+total|total\s+invoice\s+amount|totale\s+fattura|totale\s+documento|importe\s+total|total\s+factura|razem\s+brutto|warto[śs][ćc]\s+brutto|do\s+zap[łl]aty|total\s+(?:à|a)\s+payer|montant\s+total\s+t\.?t\.?c\.?|totaal\s+te\s+betalen)",
    ),
    (
        Label::Total,
        2,
        r"(?:zahlbetrag|due\s+payable|amount\s+payable|rechnungsbeitrag|beitrag\s+gesamt|total\s+due|importe\s+a\s+pagar|da\s+pagare|netto\s+a\s+pagare)",
    ),
    // "Beitrag inklusive 19 % Versicherungsteuer", "Betrag inkl. MwSt.":
    // an amount that says it includes the tax is the gross.
    (
        Label::Total,
        2,
        r"(?:beitrag|betrag|summe|preis)\s+(?:inkl\.?|inklusive)\s+(?:\d{1,2}(?:[.,]\d{1,2})?\s*%\s+)?(?:ust|mwst|umsatzsteuer|mehrwertsteuer|versicherungs?steuer)\.?",
    ),
    (Label::Supplier, 2, r"(?:vendedor|proveedor|emisor|fornitore|venditore|cedente|sprzedawca|dostawca|wystawca)"),
    (
        Label::Customer,
        2,
        r"(?:k[äa]ufer|leistungsempf[äa]nger|buyer|acheteur|koper|comprador|cliente|destinatario|cessionario|nabywca|odbiorca)",
    ),
    // Other numbers that are not the invoice's.
    (
        Label::Ignore,
        3,
        r"(?:kunden|customer|client|klant|cliente|klienta)\s*-?\s*(?:no\.?|number|nr\.?|nummer|id|n[°º]|code|konto)",
    ),
    (
        Label::Ignore,
        3,
        r"(?:ihre|unsere|your|our)\s+(?:nummer|number|referenz|reference|zeichen|order|bestellung|auftrag)",
    ),
    (
        Label::Ignore,
        3,
        r"(?:auftrags|bestell|liefer(?:schein)?|order|delivery\s+note|purchase\s+order|commande|bon\s+de\s+commande|pedido|ordine|zam[óo]wienie|vertrags|contract|projekt|project|mandats?|lieferanten|supplier|vendor|account|konto|steuer|tax|handelsregister|registration|hr[ab]?)\s*-?\s*(?:no\.?|number|nr\.?|nummer|id|n[°º]|#|referenz|ref\.?)",
    ),
    (
        Label::Ignore,
        3,
        r"(?:steuernummer|st\.?\s*-?\s*nr\.?|tax\s+number|siret|siren|kvk|nip|regon|hrb|hra|gln|ean|gtin|bic|swift|blz|bankleitzahl)",
    ),
    (Label::Ignore, 3, r"(?:gesamtbetrag|summe)\s+(?:der\s+)?(?:zu|ab)schl[äa]ge"),
    (
        Label::Ignore,
        3,
        r"(?:erhaltene\s+)?(?:anzahlungen|vorauszahlungen|bereits\s+gezahlt|prepaid|paid\s+amount|already\s+paid)",
    ),
    (
        Label::Ignore,
        3,
        r"(?:positionssumme|summe\s+positionen|line\s+total|zeilensumme|basisbetrag|warenwert|steuerbasisbetrag|steuersatz|tax\s+basis|taxable\s+amount|net\s+amou?nt\s+(?:per|by)\s+rate)",
    ),
    (
        Label::Ignore,
        3,
        r"(?:liefer|leistungs)\s*-?\s*(?:und\s+leistungs)?\s*-?\s*datum|(?:liefer|leistungs)zeitraum|abrechnungszeitraum|rechnungszeitraum|zeitraum|date\s+of\s+delivery|delivery\s+period|p[ée]riode",
    ),
    (Label::Ignore, 3, r"(?:seite|page|pagina|p[áa]gina|strona)\s*\d+\s*(?:von|of|de|di|z|/)\s*\d+"),
    (Label::Ignore, 3, r"skonto|escompte|cash\s+discount|sconto"),
];

struct LabelMatcher {
    label: Label,
    strength: u8,
    regex: Regex,
}

static LABEL_SET: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(LABELS.iter().map(|(_, _, p)| format!(r"(?i)\b(?:{p})"))).expect("static regex set")
});
static LABEL_MATCHERS: LazyLock<Vec<LabelMatcher>> = LazyLock::new(|| {
    LABELS
        .iter()
        .map(|&(label, strength, p)| LabelMatcher {
            label,
            strength,
            regex: Regex::new(&format!(r"(?i)\b(?:{p})")).expect("static regex"),
        })
        .collect()
});

#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    label: Label,
    strength: u8,
}

/// Labels on a line: whole words, longest first, no overlaps, in order.
fn label_hits(line: &str) -> Vec<Hit> {
    let mut hits: Vec<Hit> = Vec::new();
    for i in LABEL_SET.matches(line).iter() {
        let m = &LABEL_MATCHERS[i];
        for found in m.regex.find_iter(line) {
            // A label ending in a letter must end a word ("net" not "network").
            let ends_word = found.as_str().chars().last().is_some_and(|c| !c.is_alphanumeric())
                || line[found.end()..].chars().next().is_none_or(|c| !c.is_alphanumeric());
            if ends_word {
                // "Rechnungssumme Brutto (inkl. USt.)": the qualifier is
                // part of the label, not a label of its own.
                let end = QUALIFIER.find(&line[found.end()..]).map_or(found.end(), |q| found.end() + q.end());
                hits.push(Hit { start: found.start(), end, label: m.label, strength: m.strength });
            }
        }
    }
    hits.sort_by_key(|h| (std::cmp::Reverse(h.end - h.start), std::cmp::Reverse(h.strength), h.start));
    let mut kept: Vec<Hit> = Vec::new();
    for h in hits {
        if !kept.iter().any(|k| h.start < k.end && k.start < h.end) {
            kept.push(h);
        }
    }
    kept.sort_by_key(|h| h.start);
    kept
}

static QUALIFIER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^ ?\([^()\t\d]{1,30}\)").expect("static regex"));
static INVOICE_NUMBER_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\s:#.\-–—]*(?:n[°º]\s*)?([A-Za-z0-9](?:[A-Za-z0-9\-/._]*[A-Za-z0-9])?)").expect("static regex")
});
static TITLE_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:invoice|rechnung|facture|factuur|credit\s+note|gutschrift|creditnota|avoir)\b[\s:#.]*(?:no\.?|nr\.?|n[°º])?[\s:#.]*([A-Za-z]{0,5}[-/]?\d[A-Za-z0-9\-/.]*[A-Za-z0-9]|\d)")
        .expect("static regex")
});
static PAYMENT_DAYS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:within|in|innerhalb(?:\s+von)?|binnen|sous|dans\s+les|net)\s+(\d{1,3})\s*(?:days|tagen|tage|dagen|jours)\b|\bnet\s+(\d{1,3})\b")
        .expect("static regex")
});
static CURRENCY_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(EUR|USD|GBP|CHF|SEK|NOK|DKK|PLN|CZK|HUF|JPY|CAD|AUD)\b").expect("static regex"));
static COMPANY_SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s,])(?:(?i:gmbh)|a\.\s?G\.|e\.\s?V\.|&\s+Co\.(?:\s+KG)?|S\.L\.|S\.L\.U\.|Sp\.\s+z\s+o\.\s?o\.|AG|KG|OHG|UG|e\.\s?K\.|Ltd\.?|Limited|LLC|Inc\.?|Corp\.?|Corporation|PLC|plc|LLP|B\.V\.|BV|N\.V\.|NV|SARL|S\.A\.R\.L\.|SAS|S\.A\.S\.|S\.A\.|SA|SE|Oy|AB|ApS|A/S|S\.p\.A\.|SpA|S\.r\.l\.|Srl|GbR|mbH)(?:$|[\s,.;)])")
        .expect("static regex")
});

/// Symbols as currencies. `$` alone is most often USD but not always, so it
/// counts for less.
fn symbol_currency(c: char) -> Option<(&'static str, f64)> {
    match c {
        '€' => Some(("EUR", 0.85)),
        '£' => Some(("GBP", 0.85)),
        '$' => Some(("USD", 0.7)),
        '¥' => Some(("JPY", 0.7)),
        _ => None,
    }
}

/// A line split into labels and values.
struct Line<'a> {
    text: &'a str,
    hits: Vec<Hit>,
    dates: Vec<(usize, NaiveDate)>,
    amounts: Vec<(usize, Amount)>,
}

impl Line<'_> {
    /// Whether nothing but punctuation follows `pos`: the value is on the
    /// next line.
    fn empty_after(&self, pos: usize) -> bool {
        self.text.get(pos..).is_some_and(|r| r.chars().all(|c| !c.is_alphanumeric()))
    }

    /// Whether the line is just one value (an amount or a date, maybe with a
    /// currency), the shape of a table cell below its label.
    fn is_value_only(&self) -> bool {
        let masked_len: usize = self.text.chars().filter(|c| c.is_alphabetic()).count();
        self.hits.is_empty() && masked_len <= 3 && (self.dates.len() + self.amounts.len()) == 1
    }
}

/// Slash dates whose reading is unambiguous: `11/17/2026` is month-first,
/// `17/11/2026` day-first.
static SLASH_DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\b").expect("static regex"));

/// Whether the document writes dates month-first: the date order is a
/// property of the document, so one `11/17/2026` decides how `11/03/2026`
/// reads elsewhere in it.
fn month_first_document(text: &str) -> bool {
    let (mut month_first, mut day_first) = (0, 0);
    for c in SLASH_DATE.captures_iter(text) {
        let a: u32 = c[1].parse().unwrap_or(0);
        let b: u32 = c[2].parse().unwrap_or(0);
        match (a <= 12, b <= 12) {
            (true, false) if b <= 31 => month_first += 1,
            (false, true) if a <= 31 => day_first += 1,
            _ => {}
        }
    }
    month_first > 0 && day_first == 0
}

fn analyse_line(text: &str, month_first: bool) -> Line<'_> {
    let hits = label_hits(text);
    let mut dates = find_dates(text);
    if month_first {
        for d in dates.iter_mut() {
            let raw = &text[d.start..d.end];
            if let Some(c) = SLASH_DATE.captures(raw).filter(|c| c.get(0).is_some_and(|m| m.len() == raw.len())) {
                let (a, b): (u32, u32) = (c[1].parse().unwrap_or(0), c[2].parse().unwrap_or(0));
                if a <= 12 && b <= 12 && a != b {
                    use chrono::Datelike;
                    if let Some(swapped) = NaiveDate::from_ymd_opt(d.date.year(), a, b) {
                        d.date = swapped;
                    }
                }
            }
        }
    }
    // Dates, IBANs and VAT ids hold digits that are not amounts.
    let mut masked: Vec<(usize, usize)> = dates.iter().map(|d| (d.start, d.end)).collect();
    masked.extend(find_ibans(text).iter().map(|m| (m.start, m.end)));
    masked.extend(find_vat_ids(text).iter().map(|m| (m.start, m.end)));
    let amounts =
        find_amounts(&mask(text, &masked)).into_iter().filter(|a| !a.percent).map(|a| (a.start, a.amount)).collect();
    Line { text, hits, dates: dates.iter().map(|d| (d.start, d.date)).collect(), amounts }
}

/// The byte ranges of a line's tab-separated cells.
fn cells(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == '\t' {
            out.push(start..i);
            start = i + 1;
        }
    }
    out.push(start..text.len());
    out
}

/// The cell of `next` under the label `hit` of `line` (see its use), if it
/// holds no label of its own.
fn cell_below<'l, 'a>(
    line: &Line<'_>,
    hit: &Hit,
    next: Option<&'l Line<'a>>,
) -> Option<(&'l Line<'a>, std::ops::Range<usize>)> {
    let next = next?;
    let own = cells(line.text);
    let below = cells(next.text);
    let col = own.iter().position(|r| r.contains(&hit.start))?;
    let range = if own.len() == below.len() && own.len() > 1 {
        below.get(col)?.clone()
    } else if col + 1 == own.len() && below.len() > 1 {
        below.last()?.clone()
    } else {
        return None;
    };
    let labelled = next.hits.iter().any(|h| range.contains(&h.start) && h.label != Label::Ignore);
    (!labelled && !next.text[range.clone()].trim().is_empty()).then_some((next, range))
}

#[derive(Debug, Clone, Copy)]
struct Candidate<T> {
    value: T,
    strength: u8,
    line: usize,
}

fn candidate<T>(value: T, hit: &Hit, line: usize) -> Candidate<T> {
    Candidate { value, strength: hit.strength, line }
}

/// Picks the strongest candidate; among equals the first (`last = false`) or
/// the last (`last = true`: totals come at the bottom).
fn best<T: Clone>(cands: &[Candidate<T>], last: bool) -> Option<Candidate<T>> {
    let max = cands.iter().map(|c| c.strength).max()?;
    let mut strongest = cands.iter().filter(|c| c.strength == max);
    if last { strongest.next_back().cloned() } else { strongest.next().cloned() }
}

fn clean_name(s: &str) -> Option<String> {
    let s = s.trim_matches(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | ';' | '-' | '|' | '·' | '•'));
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    (collapsed.chars().filter(|c| c.is_alphabetic()).count() >= 2).then_some(collapsed)
}

/// The part of an address-like line that holds the company name
/// ("ACME GmbH · Hauptstr. 5 · Berlin" → "ACME GmbH").
fn company_part(line: &str) -> Option<String> {
    let parts = line.split(['·', '•', '|', '\t']).flat_map(|p| p.split(" - ")).flat_map(|p| p.split(", "));
    let mut first = None;
    for part in parts {
        if first.is_none() {
            first = clean_name(part);
        }
        if let Some(m) = COMPANY_SUFFIX.find(part) {
            // The name ends with its legal form ("ACME GmbH Hauptstr. 5").
            let end = m.end()
                - part[..m.end()]
                    .chars()
                    .last()
                    .filter(|c| !c.is_alphanumeric() && *c != '.')
                    .map_or(0, char::len_utf8);
            return clean_name(&part[..end]);
        }
    }
    first
}

/// A "Name: ..." line of an address block, in the vocabularies supported.
static NAME_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:name|firma|firmenname|company(?:\s+name)?|raison\s+sociale|nom|naam|bedrijfsnaam|nombre|raz[óo]n\s+social|ragione\s+sociale|denominazione|nazwa(?:\s+firmy)?)\s*[:\t]\s*(.*)$")
        .expect("static regex")
});

/// The name in a seller block under a heading ("Verkäufer", "Seller"):
/// its "Name:" line, else its first line with a legal form, else its first
/// line that is not a "label: value" pair.
fn seller_block_name(block: &[&str]) -> Option<String> {
    let block = &block[..block.len().min(8)];
    // The block ends where the buyer's begins.
    let end =
        block.iter().position(|l| label_hits(l).iter().any(|h| h.label == Label::Customer)).unwrap_or(block.len());
    let block = &block[..end];
    block
        .iter()
        .find_map(|l| NAME_LINE.captures(l).and_then(|c| c.get(1)).and_then(|m| company_part(m.as_str())))
        .or_else(|| block.iter().find(|l| COMPANY_SUFFIX.is_match(l)).and_then(|l| company_part(l)))
        .or_else(|| {
            // The first line that is neither "label: value" nor an address.
            block
                .iter()
                .find(|l| {
                    !l.contains(':')
                        && !l.contains('\t')
                        && !l.trim_start().starts_with(|c: char| c.is_ascii_digit())
                        && !POSTCODE_LINE.is_match(l)
                        && l.chars().filter(|c| c.is_alphabetic()).count() >= 3
                })
                .and_then(|l| company_part(l))
        })
}

/// A copyright notice ("(c) AWV e.V. 2020"), not a letterhead.
static COPYRIGHT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)(?:\(c\)|©|copyright)").expect("static regex"));

/// "DE 80333 München", "80333 München", "F-75001 Paris": an address line.
static POSTCODE_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:[A-Z]{1,2}[\s\-])?\d{4,5}\s+\p{L}").expect("static regex"));

/// A document title alone before a date.
static TITLE_BEFORE_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:\w*rechnung|invoice|facture|factuur|factura|fattura|faktura|gutschrift|credit\s+note|avoir)\w*\s*[:\-–]?\s*$")
        .expect("static regex")
});

/// Title words that are not a supplier name.
static TITLE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:tax\s+)?(?:invoice|rechnung|facture|factuur|credit\s+note|gutschrift|creditnota|avoir|receipt|quittung|kassenbon|reçu|kassabon|page|seite)\b")
        .expect("static regex")
});

/// Extracts invoice fields from document text.
pub fn extract_fields(text: &str) -> InvoiceFields {
    let raw_lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let month_first = month_first_document(text);
    let lines: Vec<Line<'_>> = raw_lines.iter().map(|l| analyse_line(l, month_first)).collect();

    let mut numbers: Vec<Candidate<String>> = Vec::new();
    let mut issue: Vec<Candidate<NaiveDate>> = Vec::new();
    let mut due: Vec<Candidate<NaiveDate>> = Vec::new();
    let mut net: Vec<Candidate<Amount>> = Vec::new();
    let mut vat: Vec<Candidate<Amount>> = Vec::new();
    let mut total: Vec<Candidate<Amount>> = Vec::new();
    let mut supplier_labelled: Option<String> = None;
    let mut customer_lines: Vec<usize> = Vec::new();
    let mut iban_labelled_lines: Vec<usize> = Vec::new();
    let mut vat_id_labelled_lines: Vec<usize> = Vec::new();

    for (idx, line) in lines.iter().enumerate() {
        for (h_i, hit) in line.hits.iter().enumerate() {
            let boundary = line.hits.get(h_i + 1).map_or(line.text.len(), |n| n.start);
            let in_segment = |pos: usize| pos >= hit.end && pos < boundary;
            let next = lines.get(idx + 1).filter(|n| line.empty_after(hit.end) && n.is_value_only());
            // A label that ends its cell takes its value from the cell
            // below: the same column of a table row with as many cells, or
            // the last cell of the next line (a label alone in the right
            // column of a header block).
            let below = if line.empty_after(hit.end) && next.is_none() {
                cell_below(line, hit, lines.get(idx + 1))
            } else {
                None
            };
            // A date-column header ("Beschreibung  Fälligkeit  Teilzahlung")
            // over a row with one date.
            let ends_cell =
                line.text[hit.end..].split('\t').next().is_some_and(|r| r.chars().all(|c| !c.is_alphanumeric()));
            let date_below = lines
                .get(idx + 1)
                .filter(|n| ends_cell && n.dates.len() == 1 && n.hits.iter().all(|h| h.label == Label::Ignore))
                .and_then(|n| n.dates.first().map(|&(_, d)| d));
            let first_date = line
                .dates
                .iter()
                .find(|(p, _)| in_segment(*p))
                .map(|&(_, d)| d)
                .or_else(|| next.and_then(|n| n.dates.first().map(|&(_, d)| d)))
                .or_else(|| {
                    below.clone().and_then(|(n, r)| n.dates.iter().find(|(p, _)| r.contains(p)).map(|&(_, d)| d))
                })
                .or(date_below);
            let last_amount = line
                .amounts
                .iter()
                .rev()
                .find(|(p, _)| in_segment(*p))
                .map(|&(_, a)| a)
                .or_else(|| next.and_then(|n| n.amounts.first().map(|&(_, a)| a)))
                .or_else(|| {
                    below.clone().and_then(|(n, r)| n.amounts.iter().find(|(p, _)| r.contains(p)).map(|&(_, a)| a))
                });
            // A column header over a table holds many values: the one below
            // it counts for less than a value beside its label.
            let from_below = below.is_some()
                && line.dates.iter().all(|(p, _)| !in_segment(*p))
                && line.amounts.iter().all(|(p, _)| !in_segment(*p));
            let weakened =
                Hit { strength: if from_below { hit.strength.saturating_sub(1).max(1) } else { hit.strength }, ..*hit };
            let hit = &weakened;
            match hit.label {
                Label::InvoiceNumber => {
                    let value = INVOICE_NUMBER_VALUE
                        .captures(&line.text[hit.end..boundary])
                        .and_then(|c| c.get(1))
                        .map(|m| m.as_str().to_owned())
                        .or_else(|| {
                            // A number alone in the cell below.
                            below.clone().and_then(|(n, r)| {
                                let cell = n.text[r].trim();
                                INVOICE_NUMBER_VALUE
                                    .captures(cell)
                                    .and_then(|c| c.get(1))
                                    .filter(|m| m.as_str().len() == cell.len())
                                    .map(|m| m.as_str().to_owned())
                            })
                        })
                        .filter(|v| v.chars().any(|c| c.is_ascii_digit()));
                    if let Some(value) = value {
                        numbers.push(candidate(value, hit, idx));
                        // The date on the number's line is the issue date
                        // ("Rechnung Nr. 1 vom 05.03.2018", "Invoice # 1
                        // issued at ..."), unless another label claims it.
                        if let Some(&(p, d)) = line.dates.iter().find(|(p, _)| *p >= hit.end) {
                            let free = line
                                .hits
                                .iter()
                                .all(|h| h.start < hit.end || h.start >= p || matches!(h.label, Label::IssueDate));
                            if free {
                                issue.push(Candidate { value: d, strength: 2, line: idx });
                            }
                        } else if let Some(n) = lines.get(idx + 1).filter(|n| {
                            // "Nr. 471102 vom" / "05.03.2018"
                            line.hits.last().is_some_and(|h| h.label == Label::IssueDate && line.empty_after(h.end))
                                && n.is_value_only()
                        }) {
                            if let Some(&(_, d)) = n.dates.first() {
                                issue.push(Candidate { value: d, strength: 2, line: idx + 1 });
                            }
                        } else if let Some(n) = lines.get(idx + 1) {
                            // ... or continues on the next line ("vom 31.10.2018").
                            let starts_dated = n
                                .hits
                                .first()
                                .is_some_and(|h| h.label == Label::IssueDate && n.text[..h.start].trim().is_empty());
                            if let (true, Some(&(_, d))) = (starts_dated, n.dates.first()) {
                                issue.push(Candidate { value: d, strength: 2, line: idx + 1 });
                            }
                        }
                    }
                }
                Label::IssueDate => {
                    if let Some(d) = first_date {
                        issue.push(candidate(d, hit, idx));
                    }
                }
                Label::DueDate => {
                    if let Some(d) = first_date {
                        due.push(candidate(d, hit, idx));
                    }
                }
                Label::Net | Label::Vat | Label::Total => {
                    // The last column of a totals table ("Warenwert ...
                    // Nettobetrag MwSt-Betrag Endbetrag" over rows of
                    // amounts): the last amount of its last row.
                    let table_total = (hit.label == Label::Total
                        && last_amount.is_none()
                        && line.hits.len() >= 3
                        && line.hits.last().is_some_and(|h| h.start == hit.start)
                        && line.empty_after(hit.end))
                    .then(|| {
                        lines[idx + 1..]
                            .iter()
                            .enumerate()
                            .take(12)
                            .take_while(|(_, n)| {
                                n.amounts.len() >= 2 && n.hits.iter().all(|h| h.label == Label::Ignore)
                            })
                            .last()
                            .and_then(|(k, n)| n.amounts.last().map(|&(_, a)| (idx + 1 + k, n, a)))
                    })
                    .flatten()
                    .map(|(row_idx, row, t)| {
                        // Net and VAT are the adjacent pair of the row that
                        // adds up to the total.
                        let values: Vec<Amount> = row.amounts.iter().map(|&(_, a)| a).collect();
                        if let Some(w) =
                            values[..values.len() - 1].windows(2).rev().find(|w| w[0].checked_add(w[1]) == Some(t))
                        {
                            net.push(Candidate { value: w[0], strength: 2, line: row_idx });
                            vat.push(Candidate { value: w[1], strength: 2, line: row_idx });
                        }
                        t
                    });
                    if let Some(a) = last_amount.or(table_total) {
                        let c = candidate(a, hit, idx);
                        match hit.label {
                            Label::Net => net.push(c),
                            Label::Vat => vat.push(c),
                            _ => total.push(c),
                        }
                    }
                }
                Label::Supplier => {
                    let at_line_start = line.text[..hit.start].trim().is_empty();
                    let rest = &line.text[hit.end..];
                    let labelled = rest.trim_start().starts_with([':', '\t']) || rest.trim().is_empty();
                    if at_line_start && labelled && supplier_labelled.is_none() {
                        supplier_labelled = clean_name(rest)
                            .filter(|n| !NAME_LINE.is_match(n))
                            .or_else(|| seller_block_name(&raw_lines[idx + 1..]));
                    }
                }
                Label::Customer => {
                    if line.text[..hit.start].trim().is_empty() {
                        // The customer block: this line and the address lines
                        // below it, up to the next labelled line.
                        customer_lines.push(idx);
                        for (j, l) in lines.iter().enumerate().skip(idx + 1).take(4) {
                            // The customer's own VAT id belongs to the block.
                            let other_label = l.hits.iter().any(|h| !matches!(h.label, Label::VatId | Label::Customer));
                            if other_label || !l.dates.is_empty() {
                                break;
                            }
                            customer_lines.push(j);
                        }
                    }
                }
                Label::Iban => iban_labelled_lines.extend([idx, idx + 1]),
                Label::VatId => vat_id_labelled_lines.push(idx),
                Label::Ignore => {}
            }
        }
    }

    // A title with nothing but a date beside it ("Beitragsrechnung  24.
    // Januar 2014", "Invoice 03/11/2026"): the issue date.
    for (idx, line) in lines.iter().enumerate().take(40) {
        if let Some(&(p, d)) = line.dates.first()
            && TITLE_BEFORE_DATE.is_match(&line.text[..p])
        {
            issue.push(Candidate { value: d, strength: 2, line: idx });
        }
    }
    issue.sort_by_key(|c| c.line);

    let mut fields = InvoiceFields::default();

    // Invoice number: a labelled one, else the number in a title line.
    fields.invoice_number = match best(&numbers, false) {
        Some(c) => Some(Field::new(c.value, if c.strength >= 2 { 0.95 } else { 0.8 })),
        None => raw_lines
            .iter()
            .take(10)
            .find_map(|l| TITLE_NUMBER.captures(l).and_then(|c| c.get(1)).map(|m| m.as_str().to_owned()))
            .filter(|v| v.chars().any(|c| c.is_ascii_digit()) && v.len() >= 3)
            .map(|v| Field::new(v, 0.6)),
    };

    // Dates.
    fields.issue_date = match best(&issue, false) {
        Some(c) => Some(Field::new(c.value, if c.strength >= 2 { 0.95 } else { 0.8 })),
        None => {
            // The first date that is not the due date, unlabelled.
            let due_first = due.first().map(|c| c.value);
            lines
                .iter()
                .flat_map(|l| l.dates.iter().map(|&(_, d)| d))
                .find(|d| Some(*d) != due_first)
                .map(|d| Field::new(d, 0.5))
        }
    };
    fields.due_date = match best(&due, false) {
        Some(c) => Some(Field::new(c.value, if c.strength >= 2 { 0.95 } else { 0.8 })),
        None => {
            // Payment terms ("within 30 days", "Net 30") from the issue date.
            let days = PAYMENT_DAYS
                .captures(text)
                .and_then(|c| c.get(1).or_else(|| c.get(2)))
                .and_then(|m| m.as_str().parse::<u64>().ok());
            match (&fields.issue_date, days) {
                (Some(issued), Some(days)) => {
                    issued.value.checked_add_days(Days::new(days)).map(|d| Field::new(d, 0.7))
                }
                _ => None,
            }
        }
    };

    // Amounts: the strongest label wins, the last occurrence among equals.
    let net_c = best(&net, true);
    let total_c = best(&total, true);
    let vat_c = choose_vat(&vat, net_c.map(|c| c.value), total_c.map(|c| c.value));
    let conf = |c: &Candidate<Amount>| if c.strength >= 2 { 0.85 } else { 0.75 };
    let mut net_f = net_c.as_ref().map(|c| Field::new(c.value, conf(c)));
    let mut vat_f = vat_c.as_ref().map(|c| Field::new(c.value, conf(c)));
    let mut total_f = total_c.as_ref().map(|c| Field::new(c.value, conf(c)));
    if stated_as_negative_credit(&raw_lines, [&net_f, &vat_f], &total_f) {
        for f in [&mut net_f, &mut vat_f, &mut total_f].into_iter().flatten() {
            f.value = f.value.checked_neg().unwrap_or(f.value);
        }
    }
    // Net + VAT = total confirms all three; a mismatch casts doubt on all;
    // two of them give the third, with less confidence.
    let value = |f: &Option<Field<Amount>>| f.as_ref().map(|f| f.value);
    match (value(&net_f), value(&vat_f), value(&total_f)) {
        (Some(n), Some(v), Some(t)) => {
            // Within a cent: producers round VAT per line or per rate.
            let adds_up = n.checked_add(v).and_then(|sum| sum.checked_sub(t)).is_some_and(|d| d.cents().abs() <= 1);
            let c = if adds_up { 0.98 } else { 0.6 };
            for f in [&mut net_f, &mut vat_f, &mut total_f].into_iter().flatten() {
                f.confidence = c;
            }
        }
        (Some(n), Some(v), None) => total_f = n.checked_add(v).map(|t| Field::new(t, 0.6)),
        (Some(n), None, Some(t)) if t >= n => vat_f = t.checked_sub(n).map(|v| Field::new(v, 0.6)),
        (None, Some(v), Some(t)) if t >= v => net_f = t.checked_sub(v).map(|n| Field::new(n, 0.6)),
        _ => {}
    }
    fields.net_amount = net_f;
    fields.vat_amount = vat_f;
    fields.total_amount = total_f;

    fields.currency = currency(text, total_c.and_then(|c| raw_lines.get(c.line).copied()));

    fields.iban = lines.iter().enumerate().find_map(|(idx, l)| {
        find_ibans(l.text).into_iter().next().map(|m| {
            let labelled = iban_labelled_lines.contains(&idx);
            Field::new(m.iban, if labelled { 0.99 } else { 0.9 })
        })
    });

    // VAT id: the supplier's, i.e. the first one outside the customer block.
    let vat_ids: Vec<(usize, crate::parse::vat_id::VatIdMatch)> =
        lines.iter().enumerate().flat_map(|(idx, l)| find_vat_ids(l.text).into_iter().map(move |m| (idx, m))).collect();
    fields.vat_id = vat_ids
        .iter()
        .find(|(idx, _)| !customer_lines.contains(idx))
        .or_else(|| vat_ids.first())
        .map(|(idx, m)| {
            let labelled = vat_id_labelled_lines.contains(idx);
            let c = match (m.check, labelled) {
                (VatCheck::Checksum, true) => 0.97,
                (VatCheck::Checksum, false) => 0.9,
                (VatCheck::FormatOnly, true) => 0.8,
                (VatCheck::FormatOnly, false) => 0.7,
                (VatCheck::ChecksumFailed, _) => 0.4,
            };
            Field::new(m.vat_id.clone(), c)
        })
        .or_else(|| {
            // What the document states next to a VAT-id label, even with
            // wrong check digits (a typo, a test number): reported with a
            // low confidence so that a rule or a person looks at it.
            vat_id_labelled_lines
                .iter()
                .filter(|idx| !customer_lines.contains(idx))
                .find_map(|&idx| find_vat_ids_lenient(lines[idx].text).into_iter().next())
                .map(|m| Field::new(m.vat_id, 0.4))
        });

    fields.supplier = supplier_labelled.map(|s| Field::new(s, 0.9)).or_else(|| {
        // The letterhead is at the top; lines with dates are records (a
        // statement's transactions), not a sender.
        let head = || {
            lines
                .iter()
                .enumerate()
                .take(10)
                .filter(|(i, l)| !customer_lines.contains(i) && l.dates.is_empty() && !COPYRIGHT.is_match(l.text))
        };
        head()
            .find(|(_, l)| COMPANY_SUFFIX.is_match(l.text))
            .and_then(|(i, l)| company_part(l.text).map(|s| Field::new(s, if i < 3 { 0.8 } else { 0.6 })))
            .or_else(|| {
                // The letterhead: the first line that is a name, not a title,
                // label or number.
                head()
                    .find(|(_, l)| {
                        l.hits.is_empty()
                            && l.dates.is_empty()
                            && l.amounts.is_empty()
                            && !TITLE_LINE.is_match(l.text)
                            && l.text.chars().filter(|c| c.is_alphabetic()).count() >= 3
                    })
                    .and_then(|(_, l)| company_part(l.text))
                    .map(|s| Field::new(s, 0.5))
            })
    });

    fields
}

/// A line that opens with a credit note's title word ("Avoir AV-2017-0005",
/// "Gutschrift Nr. 12", "Credit note"). Corrections ("Rechnungskorrektur",
/// "Stornorechnung", BT-3 384) are not among them: they state their
/// amounts with the sign they mean.
static CREDIT_NOTE_TITLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:avoir|credit\s*note|credit\s*memo|gutschrift|creditnota|creditfactuur|note\s+de\s+cr[ée]dit|nota\s+(?:di\s+|de\s+)?cr[ée]dito|abono)\b",
    )
    .expect("static regex")
});
/// How far down a document its title may be.
const TITLE_LINES: usize = 40;

/// A credit note's amounts are positive: EN 16931 lets the document type
/// (BT-3 381) say that they are owed back. One printed with minus signs
/// ("Total TTC -233,47 €") states the same magnitudes, so a negative total
/// (with net and VAT not positive) under a credit note's title (among the
/// document's first non-empty, trimmed `lines`) is reported
/// as its magnitude. Elsewhere a negative total stays negative: that is a
/// correction the document states.
fn stated_as_negative_credit(
    lines: &[&str],
    parts: [&Option<Field<Amount>>; 2],
    total: &Option<Field<Amount>>,
) -> bool {
    let negative_total = total.as_ref().is_some_and(|t| t.value.cents() < 0);
    let parts_not_positive = parts.iter().all(|f| f.as_ref().is_none_or(|f| f.value.cents() <= 0));
    negative_total && parts_not_positive && lines.iter().take(TITLE_LINES).any(|l| CREDIT_NOTE_TITLE.is_match(l))
}

/// Several VAT lines are either one VAT repeated (a table and the totals)
/// or one per rate (7% and 19%). When net and total are known, the reading
/// that makes them add up wins.
fn choose_vat(cands: &[Candidate<Amount>], net: Option<Amount>, total: Option<Amount>) -> Option<Candidate<Amount>> {
    let last = best(cands, true)?;
    let expected = match (net, total) {
        (Some(n), Some(t)) => t.checked_sub(n),
        _ => None,
    };
    let Some(expected) = expected else {
        return Some(last);
    };
    if last.value == expected {
        return Some(last);
    }
    let mut per_line: Vec<&Candidate<Amount>> = Vec::new();
    for c in cands {
        if !per_line.iter().any(|p| p.line == c.line) {
            per_line.push(c);
        }
    }
    let sum = per_line.iter().try_fold(Amount::ZERO, |acc, c| acc.checked_add(c.value))?;
    if sum == expected {
        return Some(Candidate { value: sum, ..last });
    }
    // One VAT line, or a run of consecutive ones (the rows of a VAT
    // breakdown), that makes net and total add up.
    for start in 0..per_line.len() {
        let mut run = Amount::ZERO;
        for c in &per_line[start..] {
            run = run.checked_add(c.value)?;
            if run == expected {
                return Some(Candidate { value: run, ..last });
            }
        }
    }
    Some(last)
}

/// The document's currency: the one on the total's line, else the most
/// frequent code or symbol.
fn currency(text: &str, total_line: Option<&str>) -> Option<Field<String>> {
    let in_line = |line: &str| -> Option<(String, f64)> {
        if let Some(m) = CURRENCY_CODE.find(line) {
            return Some((m.as_str().to_owned(), 0.95));
        }
        line.chars().find_map(symbol_currency).map(|(c, conf)| (c.to_owned(), conf.max(0.9)))
    };
    if let Some((code, conf)) = total_line.and_then(in_line) {
        return Some(Field::new(code, conf));
    }
    let mut counts: Vec<(String, usize, f64)> = Vec::new();
    let mut add = |code: &str, conf: f64| match counts.iter_mut().find(|(c, _, _)| c == code) {
        Some(e) => e.1 += 1,
        None => counts.push((code.to_owned(), 1, conf)),
    };
    for m in CURRENCY_CODE.find_iter(text) {
        add(m.as_str(), 0.9);
    }
    for c in text.chars() {
        if let Some((code, conf)) = symbol_currency(c) {
            add(code, conf);
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts.into_iter().next().map(|(code, _, conf)| Field::new(code, conf))
}

/// A normalised supplier name for matching the same supplier across
/// documents: lower case, letters and digits only, legal form dropped
/// ("ACME Widgets Ltd." and "Acme Widgets Limited" are the same).
pub fn supplier_key(name: &str) -> String {
    const LEGAL_FORMS: &[&str] = &[
        "gmbh",
        "ag",
        "kg",
        "ohg",
        "ug",
        "ek",
        "ltd",
        "limited",
        "llc",
        "inc",
        "corp",
        "corporation",
        "plc",
        "llp",
        "bv",
        "nv",
        "sarl",
        "sas",
        "sa",
        "se",
        "oy",
        "ab",
        "aps",
        "as",
        "spa",
        "srl",
        "gbr",
        "mbh",
        "co",
    ];
    name.split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty() && !LEGAL_FORMS.contains(&w.as_str()))
        .collect::<Vec<_>>()
        .join("")
}

/// A normalised invoice number for matching ("INV 2026/42" = "inv-2026-42").
pub fn invoice_key(number: &str) -> String {
    number.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn val<T: Clone>(f: &Option<Field<T>>) -> Option<T> {
        f.as_ref().map(|f| f.value.clone())
    }

    #[test]
    fn english_invoice() {
        let text = "ACME Widgets Ltd\n12 Market Street, London EC1A 1BB\nVAT Reg No: GB 123 4567 82\n\nINVOICE\n\
            Invoice Number: INV-2026-0042\nInvoice Date: 1 March 2026\nDelivery date: 27 February 2026\nDue Date: 31 March 2026\n\
            Bill To:\nGlobex Corporation\n1 Main Road, Springfield\n\n\
            Description Qty Unit Price Amount\nWidget A 10 45.00 450.00\nConsulting 8 100.00 800.00\n\
            Subtotal: GBP 1,250.00\nVAT (20%): GBP 250.00\nTotal Due: GBP 1,500.00\n\
            Payment terms: Net 30. IBAN: GB82 WEST 1234 5698 7654 32\n";
        let f = extract_fields(text);
        assert_eq!(val(&f.invoice_number).as_deref(), Some("INV-2026-0042"));
        assert_eq!(val(&f.issue_date), Some(date(2026, 3, 1)));
        assert_eq!(val(&f.due_date), Some(date(2026, 3, 31)));
        assert_eq!(val(&f.net_amount), Some(Amount::from_cents(125_000)));
        assert_eq!(val(&f.vat_amount), Some(Amount::from_cents(25_000)));
        assert_eq!(val(&f.total_amount), Some(Amount::from_cents(150_000)));
        assert_eq!(f.total_amount.as_ref().unwrap().confidence, 0.98);
        assert_eq!(val(&f.currency).as_deref(), Some("GBP"));
        assert_eq!(val(&f.iban).as_deref(), Some("GB82WEST12345698765432"));
        assert_eq!(val(&f.vat_id).as_deref(), Some("GB123456782"));
        assert_eq!(val(&f.supplier).as_deref(), Some("ACME Widgets Ltd"));
        assert_eq!(f.count(), 10);
    }

    #[test]
    fn german_invoice_with_two_vat_rates() {
        let text = "Muster Bürobedarf GmbH · Hauptstraße 5 · 10115 Berlin\nUSt-IdNr.: DE136695976\nRECHNUNG\n\
            Rechnungsnummer: RE-2026-0815\nRechnungsdatum: 01.03.2026\nZahlbar bis: 15.03.2026\n\
            Nettobetrag 200,00 EUR\nMwSt. 7 % 7,00 EUR\nMwSt. 19 % 19,00 EUR\nGesamtbetrag 226,00 EUR\n";
        let f = extract_fields(text);
        assert_eq!(val(&f.invoice_number).as_deref(), Some("RE-2026-0815"));
        assert_eq!(val(&f.issue_date), Some(date(2026, 3, 1)));
        assert_eq!(val(&f.due_date), Some(date(2026, 3, 15)));
        assert_eq!(val(&f.net_amount), Some(Amount::from_cents(20_000)));
        assert_eq!(val(&f.vat_amount), Some(Amount::from_cents(2_600)));
        assert_eq!(val(&f.total_amount), Some(Amount::from_cents(22_600)));
        assert_eq!(val(&f.currency).as_deref(), Some("EUR"));
        assert_eq!(val(&f.vat_id).as_deref(), Some("DE136695976"));
        assert_eq!(val(&f.supplier).as_deref(), Some("Muster Bürobedarf GmbH"));
    }

    #[test]
    fn labels_on_one_line_and_values_on_the_next() {
        // French groups thousands with a no-break space; a plain space is
        // not read as grouping ("2 100,00" is a quantity and a price).
        let text = "Facture n° F-77 Date de facture : 05/02/2026 Échéance : 07/03/2026\nTotal TTC\n1\u{a0}234,56 €\n";
        let f = extract_fields(text);
        assert_eq!(val(&f.invoice_number).as_deref(), Some("F-77"));
        assert_eq!(val(&f.issue_date), Some(date(2026, 2, 5)));
        assert_eq!(val(&f.due_date), Some(date(2026, 3, 7)));
        assert_eq!(val(&f.total_amount), Some(Amount::from_cents(123_456)));
        assert_eq!(val(&f.currency).as_deref(), Some("EUR"));
    }

    #[test]
    fn derived_values_and_payment_terms() {
        let text = "Factuur 2026-17\nFactuurdatum: 10-01-2026\nBetaling binnen 14 dagen\nSubtotaal € 100,00\nTotaal incl. BTW € 121,00\n";
        let f = extract_fields(text);
        assert_eq!(val(&f.invoice_number).as_deref(), Some("2026-17"));
        assert_eq!(f.invoice_number.as_ref().unwrap().confidence, 0.6);
        assert_eq!(val(&f.due_date), Some(date(2026, 1, 24)));
        assert_eq!(val(&f.vat_amount), Some(Amount::from_cents(2_100)));
        assert_eq!(f.vat_amount.as_ref().unwrap().confidence, 0.6);
    }

    #[test]
    fn bad_iban_is_not_reported_and_customer_vat_id_is_skipped() {
        let text = "Bill to: Globex BV\nBTW-nummer: NL004495445B01\n\nFrom: Jansen Logistics\nVAT ID: DE136695976\nIBAN: DE89 3704 0044 0532 0130 01\n";
        let f = extract_fields(text);
        assert_eq!(f.iban, None);
        assert_eq!(val(&f.vat_id).as_deref(), Some("DE136695976"));
        assert_eq!(val(&f.supplier).as_deref(), Some("Jansen Logistics"));
    }

    #[test]
    fn spanish_italian_and_polish_invoices() {
        let es = "Suministros Ibéricos S.L.\nFactura nº: F-2026/117\nFecha de factura: 03/02/2026\n\
            Fecha de vencimiento: 05/03/2026\nNº de pedido: P-99\nBase imponible\t1.000,00 €\nIVA 21%\t210,00 €\n\
            Total factura\t1.210,00 €\n";
        let f = extract_fields(es);
        assert_eq!(val(&f.invoice_number).as_deref(), Some("F-2026/117"));
        assert_eq!(val(&f.issue_date), Some(date(2026, 2, 3)));
        assert_eq!(val(&f.due_date), Some(date(2026, 3, 5)));
        assert_eq!(val(&f.net_amount), Some(Amount::from_cents(100_000)));
        assert_eq!(val(&f.vat_amount), Some(Amount::from_cents(21_000)));
        assert_eq!(val(&f.total_amount), Some(Amount::from_cents(121_000)));
        assert_eq!(f.total_amount.as_ref().unwrap().confidence, 0.98);

        let it = "Forniture Lombarde S.r.l.\nFattura n. 2026/45 del 10/01/2026\nCodice cliente: C-123\n\
            Data di scadenza: 09/02/2026\nImponibile\t500,00\nIVA 22%\t110,00\nTotale documento\t610,00 EUR\n";
        let f = extract_fields(it);
        assert_eq!(val(&f.invoice_number).as_deref(), Some("2026/45"));
        assert_eq!(val(&f.issue_date), Some(date(2026, 1, 10)));
        assert_eq!(val(&f.due_date), Some(date(2026, 2, 9)));
        assert_eq!(val(&f.total_amount), Some(Amount::from_cents(61_000)));
        assert_eq!(val(&f.vat_amount), Some(Amount::from_cents(11_000)));

        let pl = "Hurtownia Mazowsze Sp. z o.o.\nFaktura VAT nr FV/2026/03/17\nData wystawienia: 17.03.2026\n\
            Termin płatności: 31.03.2026\nNr zamówienia: 4711\nRazem netto\t2 000,00 zł\nKwota VAT\t460,00 zł\n\
            Razem brutto\t2 460,00 PLN\n";
        let f = extract_fields(pl);
        assert_eq!(val(&f.invoice_number).as_deref(), Some("FV/2026/03/17"));
        assert_eq!(val(&f.issue_date), Some(date(2026, 3, 17)));
        assert_eq!(val(&f.due_date), Some(date(2026, 3, 31)));
        assert_eq!(val(&f.vat_amount), Some(Amount::from_cents(46_000)));
        assert_eq!(val(&f.currency).as_deref(), Some("PLN"));
    }

    #[test]
    fn order_and_customer_numbers_are_not_the_invoice_number() {
        let text = "Kundennummer: 100200\nAuftragsnummer: A-5555\nIhre Bestellung: PO-1\nRechnungsnummer: 2026-0042\n";
        assert_eq!(val(&extract_fields(text).invoice_number).as_deref(), Some("2026-0042"));
        let text = "Customer no. 77\nOrder number: 12345\nInvoice # INV-9\n";
        assert_eq!(val(&extract_fields(text).invoice_number).as_deref(), Some("INV-9"));
    }

    #[test]
    fn a_credit_note_printed_with_minus_signs_gives_positive_amounts() {
        let text = "Au bon moulin SARL\nAvoir AV-2017-0005\nDate de facture\t16/11/2017\n\
            Total HT\t-218,48 €\nTotal taxes\t-14,99 €\nTotal TTC\t-233,47 €\n";
        let f = extract_fields(text);
        assert_eq!(val(&f.net_amount), Some(Amount::from_cents(21_848)));
        assert_eq!(val(&f.vat_amount), Some(Amount::from_cents(1_499)));
        assert_eq!(val(&f.total_amount), Some(Amount::from_cents(23_347)));
        assert_eq!(f.total_amount.as_ref().unwrap().confidence, 0.98, "and they still add up");
        // An invoice that states a negative total keeps it.
        let text = "ACME Ltd\nInvoice 2026-17\nNet total: -100.00 EUR\nVAT: -20.00 EUR\nTotal: -120.00 EUR\n";
        assert_eq!(val(&extract_fields(text).total_amount), Some(Amount::from_cents(-12_000)));
        // So does a correction (BT-3 384), whose XML carries the minus too.
        let text = "Rechnungskorrektur 471102\nNettobetrag -7,39 EUR\nUSt. -1,40 EUR\nBruttobetrag -8,79 EUR\n";
        assert_eq!(val(&extract_fields(text).total_amount), Some(Amount::from_cents(-879)));
    }

    #[test]
    fn an_amount_that_includes_the_tax_is_the_total() {
        let text = "Beitragsrechnung Nr. 00.123.456.7\nKfz-Haftpflicht\t80,00 €\nVollkasko\t140,00 €\n\
            vierteljährlicher Beitrag inklusive 19 % Versicherungsteuer\t220,00 €\n\
            Ausstehende Forderung am Ausstellungstag\t220,00 €\nzu zahlender Beitrag\t440,00 €\n";
        assert_eq!(val(&extract_fields(text).total_amount), Some(Amount::from_cents(22_000)));
    }

    #[test]
    fn labelled_total_beats_the_largest_number() {
        let text = "Invoice no: 5\nContract value 99,999.00\nSubtotal 100.00\nVAT 20.00\nTotal 120.00\n";
        let f = extract_fields(text);
        assert_eq!(val(&f.total_amount), Some(Amount::from_cents(12_000)));
        assert_eq!(f.total_amount.as_ref().unwrap().confidence, 0.98);
        // A contradiction lowers all three.
        let f = extract_fields("Subtotal 100.00\nVAT 20.00\nTotal 150.00\n");
        assert_eq!(f.total_amount.as_ref().unwrap().confidence, 0.6);
    }

    #[test]
    fn empty_text_has_no_fields() {
        assert_eq!(extract_fields(""), InvoiceFields::default());
        assert_eq!(extract_fields("").count(), 0);
    }

    #[test]
    fn keys_for_duplicate_matching() {
        assert_eq!(supplier_key("ACME Widgets Ltd."), supplier_key("Acme  Widgets Limited"));
        assert_ne!(supplier_key("ACME Widgets"), supplier_key("ACME Gadgets"));
        assert_eq!(invoice_key("inv 2026/42"), invoice_key("INV-2026-42"));
    }
}

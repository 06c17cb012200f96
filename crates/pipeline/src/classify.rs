//! Document type by keyword scoring over the file name and the first text,
//! in English, German, French and Dutch.
//!
//! Each type has weighted phrases. A phrase in the title lines counts
//! double, one in the file name triple (people name files after what they
//! are). The best type wins; its confidence grows with its score and with
//! its lead over the runner-up, so an invoice that also says "receipt"
//! somewhere is still an invoice, but with less confidence.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::sniff::DocumentFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Invoice,
    CreditNote,
    Receipt,
    Contract,
    BankStatement,
    Other,
}

impl DocumentType {
    pub const ALL: [DocumentType; 6] = [
        DocumentType::Invoice,
        DocumentType::CreditNote,
        DocumentType::Receipt,
        DocumentType::Contract,
        DocumentType::BankStatement,
        DocumentType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::Invoice => "invoice",
            DocumentType::CreditNote => "credit_note",
            DocumentType::Receipt => "receipt",
            DocumentType::Contract => "contract",
            DocumentType::BankStatement => "bank_statement",
            DocumentType::Other => "other",
        }
    }
}

impl std::fmt::Display for DocumentType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Phrases per type with weights: 3 for words that name the document
/// (they are its title), 1–2 for words typical of its body, more for words
/// that override another type (a credit note names the invoice it corrects).
/// A leading `*` lets a German word end a compound (`Dienstleistungsvertrag`,
/// `Schlussrechnung`).
const KEYWORDS: &[(DocumentType, &[(&str, f64)])] = &[
    (
        DocumentType::Invoice,
        &[
            // EN
            ("invoice", 3.0),
            ("tax invoice", 3.0),
            ("invoice number", 2.0),
            ("invoice no", 2.0),
            ("invoice date", 2.0),
            ("bill to", 1.0),
            ("amount due", 1.5),
            ("due date", 1.0),
            ("payment terms", 1.0),
            ("subtotal", 1.0),
            ("vat", 0.5),
            // DE
            ("*rechnung", 3.0),
            ("rechnungsnummer", 2.0),
            ("rechnungsdatum", 2.0),
            ("rechnungsbetrag", 1.5),
            ("zahlungsziel", 1.0),
            ("fälligkeitsdatum", 1.0),
            ("nettobetrag", 1.0),
            ("mwst", 0.5),
            ("ust-idnr", 0.5),
            // FR
            ("facture", 3.0),
            ("numéro de facture", 2.0),
            ("date de facture", 2.0),
            ("montant ttc", 1.0),
            ("total ttc", 1.0),
            ("total ht", 1.0),
            ("échéance", 1.0),
            ("tva", 0.5),
            // NL
            ("factuur", 3.0),
            ("factuurnummer", 2.0),
            ("factuurdatum", 2.0),
            ("vervaldatum", 1.0),
            ("te betalen", 1.0),
            ("btw", 0.5),
        ],
    ),
    (
        DocumentType::CreditNote,
        &[
            ("credit note", 6.0),
            ("credit memo", 6.0),
            ("credit nota", 6.0),
            ("creditnote", 6.0),
            ("gutschrift", 6.0),
            ("rechnungskorrektur", 6.0),
            ("stornorechnung", 6.0),
            ("avoir", 6.0),
            ("note de crédit", 6.0),
            ("facture d'avoir", 6.0),
            ("creditnota", 6.0),
            ("creditfactuur", 6.0),
            ("refund", 1.0),
            ("credited", 1.0),
            ("erstattung", 1.0),
            ("remboursement", 1.0),
            ("terugbetaling", 1.0),
        ],
    ),
    (
        DocumentType::Receipt,
        &[
            ("receipt", 3.0),
            ("sales receipt", 3.0),
            ("cash receipt", 3.0),
            ("thank you for your purchase", 2.0),
            ("change", 1.0),
            ("cash", 1.0),
            ("card payment", 1.0),
            ("paid", 0.5),
            ("quittung", 3.0),
            ("kassenbon", 3.0),
            ("kassenbeleg", 3.0),
            ("kaufbeleg", 3.0),
            ("beleg", 1.5),
            ("bar", 0.5),
            ("rückgeld", 1.0),
            ("vielen dank für ihren einkauf", 2.0),
            ("reçu", 3.0),
            ("ticket de caisse", 3.0),
            ("merci de votre visite", 2.0),
            ("rendu", 1.0),
            ("kassabon", 3.0),
            ("kwitantie", 3.0),
            ("bon", 1.0),
            ("wisselgeld", 1.0),
            ("bedankt voor uw aankoop", 2.0),
        ],
    ),
    (
        DocumentType::Contract,
        &[
            ("contract", 3.0),
            ("agreement", 3.0),
            ("service agreement", 3.0),
            ("terms and conditions", 1.5),
            ("the parties", 2.0),
            ("hereby", 1.0),
            ("hereinafter", 2.0),
            ("term of the agreement", 2.0),
            ("termination", 1.5),
            ("governing law", 2.0),
            ("signature", 1.0),
            ("signed", 0.5),
            ("*vertrag", 3.0),
            ("*vereinbarung", 3.0),
            ("vertragsparteien", 2.0),
            ("kündigung", 1.5),
            ("laufzeit", 1.0),
            ("gerichtsstand", 2.0),
            ("unterschrift", 1.0),
            ("contrat", 3.0),
            ("les parties", 2.0),
            ("résiliation", 1.5),
            ("ci-après", 2.0),
            ("durée", 0.5),
            ("overeenkomst", 3.0),
            ("partijen", 2.0),
            ("opzegging", 1.5),
            ("looptijd", 1.0),
            ("handtekening", 1.0),
        ],
    ),
    (
        DocumentType::BankStatement,
        &[
            ("bank statement", 4.0),
            ("account statement", 4.0),
            ("statement of account", 4.0),
            ("opening balance", 2.0),
            ("closing balance", 2.0),
            ("available balance", 1.5),
            ("balance", 0.5),
            ("transactions", 1.0),
            ("debit", 0.5),
            ("credit", 0.3),
            ("kontoauszug", 4.0),
            ("anfangssaldo", 2.0),
            ("endsaldo", 2.0),
            ("alter kontostand", 2.0),
            ("neuer kontostand", 2.0),
            ("buchungstag", 1.5),
            ("umsätze", 1.0),
            ("relevé de compte", 4.0),
            ("relevé bancaire", 4.0),
            ("solde initial", 2.0),
            ("solde final", 2.0),
            ("ancien solde", 2.0),
            ("nouveau solde", 2.0),
            ("rekeningafschrift", 4.0),
            ("bankafschrift", 4.0),
            ("beginsaldo", 2.0),
            ("eindsaldo", 2.0),
            ("saldo", 0.5),
        ],
    ),
];

struct Matcher {
    doc_type: DocumentType,
    phrase: &'static str,
    weight: f64,
    regex: Regex,
}

static MATCHERS: LazyLock<Vec<Matcher>> = LazyLock::new(|| {
    KEYWORDS
        .iter()
        .flat_map(|(doc_type, phrases)| {
            phrases.iter().map(move |&(phrase, weight)| {
                // Whole words only ("bon" must not match "bonus"); blanks in a
                // phrase match any run of whitespace.
                let (compound, words) = match phrase.strip_prefix('*') {
                    Some(rest) => (r"\w*", rest),
                    None => ("", phrase),
                };
                let pattern = words.split(' ').map(regex::escape).collect::<Vec<_>>().join(r"\s+");
                Matcher {
                    doc_type: *doc_type,
                    phrase: words,
                    weight,
                    regex: Regex::new(&format!(r"(?i)\b{compound}{pattern}\b")).expect("static regex"),
                }
            })
        })
        .collect()
});

/// The classifier's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub document_type: DocumentType,
    /// 0..1, two decimals.
    pub confidence: f64,
    /// The phrases that decided it, for people reviewing the result.
    pub matched: Vec<String>,
}

/// Score below which nothing was recognised and the type is `other`.
const MIN_SCORE: f64 = 2.0;
/// A phrase counts at most this many times: a long statement repeating
/// "credit" must not outweigh its title.
const MAX_HITS: usize = 3;

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Classifies a document from its file name, format and first text.
pub fn classify(filename: &str, format: DocumentFormat, text: &str) -> Classification {
    // Title: the first two non-empty lines (sender and document name).
    let title: String = text.lines().map(str::trim).filter(|l| !l.is_empty()).take(2).collect::<Vec<_>>().join("\n");
    // "credit_note-2026_03.pdf" → "credit note 2026 03 pdf"
    let name: String = filename.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();

    let mut scores: Vec<(DocumentType, f64, Vec<String>)> = Vec::new();
    for m in MATCHERS.iter() {
        let hits = m.regex.find_iter(text).take(MAX_HITS).count();
        let in_title = m.regex.is_match(&title);
        let in_name = m.regex.is_match(&name);
        let score =
            m.weight * hits as f64 + if in_title { m.weight } else { 0.0 } + if in_name { 2.0 * m.weight } else { 0.0 };
        if score > 0.0 {
            match scores.iter_mut().find(|(t, _, _)| *t == m.doc_type) {
                Some(entry) => {
                    entry.1 += score;
                    entry.2.push(m.phrase.to_owned());
                }
                None => scores.push((m.doc_type, score, vec![m.phrase.to_owned()])),
            }
        }
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top = scores.first().map_or(0.0, |s| s.1);
    let second = scores.get(1).map_or(0.0, |s| s.1);
    if top < MIN_SCORE {
        // Nothing recognisable. Images without a telling file name land
        // here; their type is unknown rather than confidently "other".
        let confidence = if format.is_image() || text.trim().is_empty() { 0.3 } else { 0.6 };
        return Classification { document_type: DocumentType::Other, confidence, matched: Vec::new() };
    }
    let (document_type, _, mut matched) = scores.swap_remove(0);
    matched.sort();
    matched.dedup();
    // Strength saturates with score; the share of the lead over the
    // runner-up discounts ambiguous documents.
    let strength = 1.0 - (-top / 6.0).exp();
    let lead = top / (top + second);
    let confidence = round2((strength * lead).clamp(0.0, 0.99));
    Classification { document_type, confidence, matched }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(filename: &str, text: &str) -> DocumentType {
        classify(filename, DocumentFormat::Text, text).document_type
    }

    #[test]
    fn invoices_in_four_languages() {
        assert_eq!(kind("doc.txt", "ACME Ltd\nINVOICE\nInvoice Number: 42\nAmount due: 10.00"), DocumentType::Invoice);
        assert_eq!(
            kind("doc.txt", "Muster GmbH\nRECHNUNG\nRechnungsnummer: 7\nZahlungsziel 14 Tage"),
            DocumentType::Invoice
        );
        assert_eq!(
            kind("doc.txt", "Dupont SARL\nFACTURE\nNuméro de facture : 12\nTotal TTC 12,00"),
            DocumentType::Invoice
        );
        assert_eq!(kind("doc.txt", "Jansen BV\nFACTUUR\nFactuurnummer: 3\nTe betalen: 5,00"), DocumentType::Invoice);
    }

    #[test]
    fn credit_note_beats_the_invoice_it_refers_to() {
        let text = "Gutschrift\nzur Rechnung RE-2026-0815 vom 01.03.2026\nRechnungsnummer RE-2026-0815\nGutschriftsbetrag: 100,00 EUR";
        assert_eq!(kind("scan.txt", text), DocumentType::CreditNote);
        assert_eq!(kind("doc.txt", "CREDITNOTA\nbetreft factuur 2026-17"), DocumentType::CreditNote);
        assert_eq!(kind("doc.txt", "AVOIR\nFacture d'origine 2026-9"), DocumentType::CreditNote);
    }

    #[test]
    fn receipts_contracts_statements() {
        assert_eq!(
            kind("x.txt", "Café du Coin\nTICKET DE CAISSE\n2 cafés 5,00\nMerci de votre visite"),
            DocumentType::Receipt
        );
        assert_eq!(kind("x.txt", "Kassenbon\nSumme 12,00\nBar 20,00\nRückgeld 8,00"), DocumentType::Receipt);
        assert_eq!(
            kind(
                "x.txt",
                "SERVICE AGREEMENT\nbetween the parties hereinafter called Provider and Client.\nGoverning law: England."
            ),
            DocumentType::Contract
        );
        assert_eq!(
            kind("x.txt", "Dienstleistungsvertrag\nzwischen den Vertragsparteien\nGerichtsstand Berlin"),
            DocumentType::Contract
        );
        assert_eq!(kind("x.txt", "Muster GmbH\nSchlussrechnung Nr. 4"), DocumentType::Invoice);
        assert_eq!(
            kind("x.txt", "Kontoauszug Nr. 3\nAlter Kontostand 100,00\nNeuer Kontostand 80,00"),
            DocumentType::BankStatement
        );
        assert_eq!(kind("x.txt", "Rekeningafschrift\nBeginsaldo 10,00\nEindsaldo 5,00"), DocumentType::BankStatement);
    }

    #[test]
    fn file_name_alone_and_nothing_at_all() {
        let c = classify("invoice_2026-03.png", DocumentFormat::Png, "");
        assert_eq!(c.document_type, DocumentType::Invoice);
        let c = classify("IMG_0001.png", DocumentFormat::Png, "");
        assert_eq!((c.document_type, c.confidence), (DocumentType::Other, 0.3));
        let c = classify("notes.txt", DocumentFormat::Text, "Shopping list: milk, eggs, bread");
        assert_eq!(c.document_type, DocumentType::Other);
    }

    #[test]
    fn whole_words_only() {
        // "bonus" and "barrel" contain receipt words but are not them.
        assert_eq!(kind("x.txt", "bonus barrel bonanza"), DocumentType::Other);
    }

    #[test]
    fn clear_documents_score_high_ambiguous_lower() {
        let clear = classify(
            "invoice.txt",
            DocumentFormat::Text,
            "INVOICE\nInvoice number: 1\nInvoice date: 1 March 2026\nAmount due: 5.00",
        );
        assert!(clear.confidence >= 0.9, "{clear:?}");
        let mixed = classify("x.txt", DocumentFormat::Text, "Invoice\nReceipt\n");
        assert!(mixed.confidence < 0.5, "{mixed:?}");
        assert!((0.0..=1.0).contains(&mixed.confidence));
    }
}

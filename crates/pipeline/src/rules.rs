//! Criteria rules: loaded from a TOML (or JSON) file, evaluated over what
//! the earlier stages found. Evaluation is pure; the one fact that needs
//! the database (an earlier invoice with the same supplier and number) is
//! looked up by the stage and passed in.

use std::path::Path;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::classify::DocumentType;
use crate::error::ConfigError;
use crate::fields::{FieldName, InvoiceFields};
use crate::parse::amount::Amount;

/// The rules shipped with the crate, used when no file is configured.
pub const DEFAULT_RULES: &str = include_str!("../rules/default.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What a rule checks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    TotalAbove {
        threshold: Amount,
        #[serde(default)]
        currency: Option<String>,
    },
    MissingField {
        field: FieldName,
    },
    Overdue {
        #[serde(default)]
        grace_days: u32,
    },
    PossibleDuplicate,
    NeedsOcr,
    LowConfidence {
        min_confidence: f64,
    },
    AmountsInconsistent,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rule {
    /// Stable id: the ticket's `rule`, so at most one ticket per rule and job.
    pub id: String,
    pub severity: Severity,
    #[serde(default)]
    pub needs_human: bool,
    /// Document types the rule applies to; empty means all.
    #[serde(default)]
    pub applies_to: Vec<DocumentType>,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    #[serde(flatten)]
    pub check: Check,
}

fn enabled_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RuleSet {
    #[serde(rename = "rule", default)]
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// The rules embedded in the crate.
    pub fn embedded_default() -> Result<RuleSet, ConfigError> {
        RuleSet::from_toml(DEFAULT_RULES, "embedded rules/default.toml")
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<RuleSet, ConfigError> {
        let set: RuleSet = toml::from_str(text)
            .map_err(|e| ConfigError::InvalidRules { origin: origin.to_owned(), message: e.to_string() })?;
        set.validate(origin)
    }

    /// JSON form: `{"rule": [{"id": ..., "kind": ..., ...}]}`.
    pub fn from_json(text: &str, origin: &str) -> Result<RuleSet, ConfigError> {
        let set: RuleSet = serde_json::from_str(text)
            .map_err(|e| ConfigError::InvalidRules { origin: origin.to_owned(), message: e.to_string() })?;
        set.validate(origin)
    }

    /// Reads a rules file: JSON if it ends in `.json`, TOML otherwise.
    pub fn from_path(path: &Path) -> Result<RuleSet, ConfigError> {
        let origin = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::ReadRules { path: origin.clone(), source })?;
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            RuleSet::from_json(&text, &origin)
        } else {
            RuleSet::from_toml(&text, &origin)
        }
    }

    /// Ids are ticket keys, so they must be unique and non-empty.
    fn validate(self, origin: &str) -> Result<RuleSet, ConfigError> {
        let invalid = |message: String| ConfigError::InvalidRules { origin: origin.to_owned(), message };
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.id.trim().is_empty() {
                return Err(invalid(format!("rule #{} has an empty id", i + 1)));
            }
            if self.rules[..i].iter().any(|r| r.id == rule.id) {
                return Err(invalid(format!("rule id {:?} is used twice", rule.id)));
            }
            if let Check::LowConfidence { min_confidence } = rule.check
                && !(0.0..=1.0).contains(&min_confidence)
            {
                return Err(invalid(format!("rule {:?}: min_confidence must be within 0..1", rule.id)));
            }
        }
        Ok(self)
    }

    /// Whether any enabled rule needs the duplicate lookup (a database
    /// query the stage can skip otherwise).
    pub fn wants_duplicate_check(&self) -> bool {
        self.rules.iter().any(|r| r.enabled && r.check == Check::PossibleDuplicate)
    }
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub needs_human: bool,
}

/// Everything rules look at.
#[derive(Debug, Clone)]
pub struct RuleInput<'a> {
    pub document_type: DocumentType,
    pub classification_confidence: f64,
    pub fields: &'a InvoiceFields,
    pub needs_ocr: bool,
    pub processing_date: NaiveDate,
    /// An earlier job with the same supplier and invoice number.
    pub duplicate_of: Option<Uuid>,
}

impl RuleSet {
    /// The findings for one document, in rule order.
    pub fn evaluate(&self, input: &RuleInput<'_>) -> Vec<Finding> {
        self.rules
            .iter()
            .filter(|r| r.enabled && (r.applies_to.is_empty() || r.applies_to.contains(&input.document_type)))
            .filter_map(|rule| {
                check(&rule.check, input).map(|message| Finding {
                    rule: rule.id.clone(),
                    severity: rule.severity,
                    message,
                    needs_human: rule.needs_human,
                })
            })
            .collect()
    }
}

/// The finding's message if the check fires.
fn check(check: &Check, input: &RuleInput<'_>) -> Option<String> {
    let f = input.fields;
    match check {
        Check::TotalAbove { threshold, currency } => {
            let total = f.total_amount.as_ref()?;
            let doc_currency = f.currency.as_ref().map(|c| c.value.as_str());
            if let Some(wanted) = currency
                && doc_currency != Some(wanted.as_str())
            {
                return None;
            }
            (total.value > *threshold).then(|| {
                format!("total {} {} is above the threshold of {threshold}", total.value, doc_currency.unwrap_or(""))
                    .replace("  ", " ")
            })
        }
        Check::MissingField { field } => {
            (!f.is_present(*field)).then(|| format!("no {} found in the document", field.as_str().replace('_', " ")))
        }
        Check::Overdue { grace_days } => {
            let due = f.due_date.as_ref()?.value;
            let limit = due.checked_add_days(Days::new(u64::from(*grace_days)))?;
            (limit < input.processing_date).then(|| {
                let days = (input.processing_date - due).num_days();
                format!("due on {due}, {days} days before processing on {}", input.processing_date)
            })
        }
        Check::PossibleDuplicate => input.duplicate_of.map(|job| {
            let number = f.invoice_number.as_ref().map_or("", |n| n.value.as_str());
            let supplier = f.supplier.as_ref().map_or("", |s| s.value.as_str());
            format!("invoice {number} from {supplier} was already processed in job {job}")
        }),
        Check::NeedsOcr => {
            input.needs_ocr.then(|| "the document has no text layer; OCR or manual entry needed".to_owned())
        }
        Check::LowConfidence { min_confidence } => (input.classification_confidence < *min_confidence).then(|| {
            format!(
                "classified as {} with confidence {:.2}, below {min_confidence:.2}",
                input.document_type, input.classification_confidence
            )
        }),
        Check::AmountsInconsistent => {
            let (n, v, t) = (f.net_amount.as_ref()?, f.vat_amount.as_ref()?, f.total_amount.as_ref()?);
            // Within a cent, as analysis checks it: producers round VAT per
            // line or per rate.
            let off = n.value.checked_add(v.value).and_then(|sum| sum.checked_sub(t.value));
            off.is_none_or(|d| d.cents().abs() > 1)
                .then(|| format!("net {} + VAT {} does not equal the total {}", n.value, v.value, t.value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{Field, Source};

    fn input(fields: &InvoiceFields) -> RuleInput<'_> {
        RuleInput {
            document_type: DocumentType::Invoice,
            classification_confidence: 0.95,
            fields,
            needs_ocr: false,
            processing_date: NaiveDate::from_ymd_opt(2026, 4, 10).unwrap(),
            duplicate_of: None,
        }
    }

    fn complete() -> InvoiceFields {
        InvoiceFields {
            invoice_number: Some(Field { value: "INV-1".into(), confidence: 0.95, source: Source::Text }),
            issue_date: NaiveDate::from_ymd_opt(2026, 3, 1).map(|d| Field {
                value: d,
                confidence: 0.95,
                source: Source::Text,
            }),
            due_date: NaiveDate::from_ymd_opt(2026, 4, 30).map(|d| Field {
                value: d,
                confidence: 0.95,
                source: Source::Text,
            }),
            net_amount: Some(Field { value: Amount::from_cents(10_000), confidence: 0.98, source: Source::Text }),
            vat_amount: Some(Field { value: Amount::from_cents(1_900), confidence: 0.98, source: Source::Text }),
            total_amount: Some(Field { value: Amount::from_cents(11_900), confidence: 0.98, source: Source::Text }),
            currency: Some(Field { value: "EUR".into(), confidence: 0.95, source: Source::Text }),
            iban: None,
            vat_id: Some(Field { value: "DE136695976".into(), confidence: 0.97, source: Source::Text }),
            supplier: Some(Field { value: "ACME GmbH".into(), confidence: 0.8, source: Source::Text }),
            ..Default::default()
        }
    }

    fn ids(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.rule.as_str()).collect()
    }

    #[test]
    fn embedded_rules_parse() {
        let rules = RuleSet::embedded_default().unwrap();
        assert!(rules.rules.len() >= 6);
        assert!(rules.wants_duplicate_check());
    }

    #[test]
    fn a_clean_invoice_has_no_findings() {
        let rules = RuleSet::embedded_default().unwrap();
        let fields = complete();
        assert_eq!(rules.evaluate(&input(&fields)), vec![]);
    }

    #[test]
    fn each_default_rule_fires() {
        let rules = RuleSet::embedded_default().unwrap();
        let mut fields = complete();
        fields.vat_id = None;
        fields.total_amount =
            Some(Field { value: Amount::from_cents(2_000_000), confidence: 0.6, source: Source::Text });
        fields.due_date =
            NaiveDate::from_ymd_opt(2026, 3, 31).map(|d| Field { value: d, confidence: 0.95, source: Source::Text });
        let mut inp = input(&fields);
        inp.duplicate_of = Some(Uuid::nil());
        let findings = rules.evaluate(&inp);
        assert_eq!(
            ids(&findings),
            vec!["high_total", "missing_vat_id", "overdue", "possible_duplicate", "amounts_inconsistent"]
        );
        let overdue = &findings[2];
        assert_eq!(overdue.message, "due on 2026-03-31, 10 days before processing on 2026-04-10");
        assert!(!overdue.needs_human);
        assert!(findings[0].needs_human);
        assert_eq!(findings[0].message, "total 20000.00 EUR is above the threshold of 10000.00");
    }

    #[test]
    fn applies_to_restricts_rules() {
        let rules = RuleSet::embedded_default().unwrap();
        let fields = InvoiceFields::default();
        let mut inp = input(&fields);
        inp.document_type = DocumentType::Contract;
        inp.needs_ocr = true;
        inp.classification_confidence = 0.3;
        assert_eq!(ids(&rules.evaluate(&inp)), vec!["needs_ocr", "low_confidence_classification"]);
    }

    #[test]
    fn custom_rules_from_toml_and_json() {
        let toml = r#"
            [[rule]]
            id = "big_chf"
            kind = "total_above"
            threshold = "1.000,00"
            currency = "CHF"
            severity = "critical"
            needs_human = true
        "#;
        let rules = RuleSet::from_toml(toml, "test").unwrap();
        assert_eq!(
            rules.rules[0].check,
            Check::TotalAbove { threshold: Amount::from_cents(100_000), currency: Some("CHF".into()) }
        );
        let fields = complete();
        assert!(rules.evaluate(&input(&fields)).is_empty(), "EUR total is not checked against a CHF rule");

        let json = r#"{"rule": [{"id": "no_iban", "kind": "missing_field", "field": "iban", "severity": "low"}]}"#;
        let rules = RuleSet::from_json(json, "test").unwrap();
        assert_eq!(ids(&rules.evaluate(&input(&fields))), vec!["no_iban"]);
    }

    #[test]
    fn invalid_rule_files_are_rejected() {
        let dup =
            "[[rule]]\nid='a'\nkind='needs_ocr'\nseverity='low'\n[[rule]]\nid='a'\nkind='needs_ocr'\nseverity='low'\n";
        assert!(matches!(RuleSet::from_toml(dup, "t"), Err(ConfigError::InvalidRules { .. })));
        let unknown_kind = "[[rule]]\nid='a'\nkind='nope'\nseverity='low'\n";
        assert!(RuleSet::from_toml(unknown_kind, "t").is_err());
        let bad_amount = "[[rule]]\nid='a'\nkind='total_above'\nthreshold='lots'\nseverity='low'\n";
        assert!(RuleSet::from_toml(bad_amount, "t").is_err());
        let bad_field = "[[rule]]\nid='a'\nkind='missing_field'\nfield='colour'\nseverity='low'\n";
        assert!(RuleSet::from_toml(bad_field, "t").is_err());
    }
}

//! Stage 6: apply the configured rules; look up earlier invoices with the
//! same supplier and number for the duplicate rule.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::names;
use crate::context::StageContext;
use crate::error::StageError;
use crate::fields::{invoice_key, supplier_key};
use crate::pipeline::{Stage, StageReport};
use crate::rules::{Check, Finding, RuleInput, RuleSet};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CriteriaOutput {
    pub findings: Vec<Finding>,
    /// The earlier job with the same supplier and invoice number, if any.
    pub duplicate_of: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct CriteriaDetection {
    rules: Arc<RuleSet>,
}

impl CriteriaDetection {
    pub fn new(rules: RuleSet) -> Self {
        CriteriaDetection { rules: Arc::new(rules) }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }
}

#[async_trait]
impl Stage for CriteriaDetection {
    fn name(&self) -> &'static str {
        names::CRITERIA_DETECTION
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let classification = ctx.classification_output()?;
        let document_type = classification.document_type;
        let fields = &ctx.analysis_output()?.fields;
        let needs_ocr = ctx.extraction_output()?.needs_ocr;

        // The lookup costs a query; only run it when a duplicate rule
        // applies to this document type and there is something to match.
        let duplicate_rule_applies = self.rules.rules.iter().any(|r| {
            r.enabled
                && r.check == Check::PossibleDuplicate
                && (r.applies_to.is_empty() || r.applies_to.contains(&document_type))
        });
        let keys = match (&fields.supplier, &fields.invoice_number) {
            (Some(s), Some(n)) => Some((supplier_key(&s.value), invoice_key(&n.value))),
            _ => None,
        };
        let duplicate_of = match keys {
            Some((supplier, number)) if duplicate_rule_applies && !supplier.is_empty() && !number.is_empty() => {
                ctx.earlier.duplicate_of(ctx.document.job_id, &supplier, &number).await?
            }
            _ => None,
        };

        let findings = self.rules.evaluate(&RuleInput {
            document_type,
            classification_confidence: classification.confidence,
            fields,
            needs_ocr,
            processing_date: ctx.processing_date,
            duplicate_of,
        });
        let report = StageReport::new(findings.len() as u64, 0);
        ctx.criteria = Some(CriteriaOutput { findings, duplicate_of });
        Ok(report)
    }
}

//! Stage 5: invoice fields from the extracted text, each with a confidence.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::names;
use crate::context::StageContext;
use crate::document::fields_of;
use crate::error::StageError;
use crate::fields::InvoiceFields;
use crate::pipeline::{Stage, StageReport, blocking};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisOutput {
    pub fields: InvoiceFields,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Analysis;

#[async_trait]
impl Stage for Analysis {
    fn name(&self) -> &'static str {
        names::ANALYSIS
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let text = ctx.extraction_output()?.text.clone();
        let validation = ctx.validation_output()?;
        let (format, structured) = (validation.format, validation.structured.clone());
        let bytes = text.len() as u64;
        // Dozens of patterns over every line: CPU work for long documents.
        let fields = blocking(&ctx.work, move |_| fields_of(format, &text, structured.as_ref())).await?;
        let report = StageReport::new(fields.count() as u64, bytes);
        ctx.analysis = Some(AnalysisOutput { fields });
        Ok(report)
    }
}

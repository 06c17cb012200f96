//! Stage 7: a ticket for each finding that needs a person. The tickets are
//! an output: the worker commits them with the attempt's outcome, one per
//! (job, rule), so a retried or redelivered job finds its tickets in place.

use async_trait::async_trait;
use job_model::TicketDraft;

use super::names;
use crate::context::StageContext;
use crate::error::StageError;
use crate::pipeline::{Stage, StageReport};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketOutput {
    /// One per finding that needs a person, in the order of the findings.
    pub tickets: Vec<TicketDraft>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TicketGeneration;

#[async_trait]
impl Stage for TicketGeneration {
    fn name(&self) -> &'static str {
        names::TICKET_GENERATION
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let tickets: Vec<TicketDraft> = ctx
            .criteria_output()?
            .findings
            .iter()
            .filter(|f| f.needs_human)
            .map(|f| TicketDraft {
                rule: f.rule.clone(),
                severity: f.severity.as_str().to_owned(),
                message: f.message.clone(),
            })
            .collect();
        let report = StageReport::new(tickets.len() as u64, 0);
        ctx.tickets = Some(TicketOutput { tickets });
        Ok(report)
    }
}

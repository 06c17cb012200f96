//! Stage 7: a ticket for each finding that needs a person. One ticket per
//! (job, rule): a retried or redelivered job finds its tickets in place.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::names;
use crate::context::StageContext;
use crate::db::{self, NewTicket};
use crate::error::StageError;
use crate::pipeline::{Stage, StageReport};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketOutput {
    /// Tickets opened by this run.
    pub created: u64,
    /// Tickets an earlier run of the same job had opened already.
    pub existing: u64,
    /// Rules with a ticket for this job.
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TicketGeneration;

#[async_trait]
impl Stage for TicketGeneration {
    fn name(&self) -> &'static str {
        names::TICKET_GENERATION
    }

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError> {
        let findings = &ctx.criteria_output()?.findings;
        let mut out = TicketOutput::default();
        for finding in findings.iter().filter(|f| f.needs_human) {
            let ticket = NewTicket {
                job_id: ctx.document.job_id,
                attempt: ctx.document.attempt,
                rule: &finding.rule,
                severity: finding.severity.as_str(),
                message: &finding.message,
            };
            if db::insert_ticket(&ctx.pool, &ticket).await? {
                out.created += 1;
            } else {
                out.existing += 1;
            }
            out.rules.push(finding.rule.clone());
        }
        let report = StageReport::new(out.created + out.existing, 0);
        ctx.tickets = Some(out);
        Ok(report)
    }
}

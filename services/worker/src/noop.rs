//! `PIPELINE_NOOP=true`: the eight stages replaced by stages that do
//! nothing, under the same names, so the worker still claims, times,
//! records and reports eight stages per job. What a benchmark measures
//! with it is the platform's own cost per job, without the document work.

use async_trait::async_trait;
use pipeline::{Pipeline, PipelineConfig, Stage, StageContext, StageError, StageReport};

struct Noop(&'static str);

#[async_trait]
impl Stage for Noop {
    fn name(&self) -> &'static str {
        self.0
    }

    async fn run(&self, _ctx: &mut StageContext) -> Result<StageReport, StageError> {
        Ok(StageReport::default())
    }
}

pub fn pipeline(config: PipelineConfig) -> Pipeline {
    let mut pipeline = Pipeline::empty(config);
    for name in pipeline::stages::names::ALL {
        pipeline.push(Noop(name));
    }
    pipeline
}

use clap::Parser;
use ingest_api::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let telemetry = telemetry::init("ingest-api", &config.log);
    let result = match Application::build(config).await {
        Ok(app) => app.run_until_stopped(service_common::shutdown::on_signals()).await,
        Err(error) => Err(error),
    };
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "ingest-api failed");
    }
    telemetry.shutdown().await;
    result
}

use clap::Parser;
use worker::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let telemetry = telemetry::init("worker", &config.log);
    let result = match Application::build(config).await {
        Ok(app) => app.run_until_stopped(service_common::shutdown::on_signals()).await,
        Err(error) => Err(error),
    };
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "worker failed");
    }
    telemetry.shutdown().await;
    result
}

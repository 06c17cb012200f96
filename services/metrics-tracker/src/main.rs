use clap::Parser;
use metrics_tracker::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let telemetry = telemetry::init("metrics-tracker", &config.log);
    let result = match Application::build(config).await {
        Ok(app) => app.run_until_stopped(service_common::shutdown::on_signals()).await,
        Err(error) => Err(error),
    };
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "metrics-tracker failed");
    }
    telemetry.shutdown().await;
    result
}

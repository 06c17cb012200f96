use clap::Parser;
use dlq_admin::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let telemetry = telemetry::init("dlq-admin", &config.log);
    let app = Application::build(config).await?;
    let result = app.run_until_stopped(service_common::shutdown::on_signals()).await;
    telemetry.shutdown().await;
    result
}

use clap::Parser;
use ingest_api::{Application, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init("ingest-api", &config.log);
    let app = Application::build(config).await?;
    app.run_until_stopped(service_common::shutdown::on_signals()).await
}

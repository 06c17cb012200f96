//! `docflow-bench`: see the library docs and BENCHMARKS.md.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = docflow_bench::Config::parse();
    let out = config.out.clone();
    let report = docflow_bench::run(config).await?;
    println!("{}", docflow_bench::report::table(&report));
    if let Some(baseline) = &report.baseline {
        println!("{}", docflow_bench::report::ratios(&report, baseline));
    }
    println!("JSON report: {}", out.display());
    Ok(())
}

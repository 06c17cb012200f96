//! Which broker connection carries what, as the broker itself reports it
//! (`rabbitmqctl`): during a memory or disk alarm RabbitMQ blocks every
//! connection that publishes, so a dead-letter publish on the consuming
//! connection would stop that worker's acks as well.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use serde_json::Value;
use test_support::{eventually, unique_suffix};

use crate::platform::{Platform, Setup};

fn rabbitmqctl_json(args: &[&str]) -> Vec<Value> {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .args(["--formatter", "json", "--quiet"])
        .output()
        .expect("rabbitmqctl runs beside the local broker");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("rabbitmqctl {args:?} output: {e}"))
}

/// connection pid -> the client's connection name.
fn connection_names() -> HashMap<String, String> {
    rabbitmqctl_json(&["list_connections", "pid", "client_properties"])
        .into_iter()
        .filter_map(|c| {
            let name = c["client_properties"]
                .as_array()?
                .iter()
                .find_map(|p| (p[0] == "connection_name").then(|| p[2].as_str().unwrap_or_default().to_owned()))?;
            Some((c["pid"].as_str()?.to_owned(), name))
        })
        .collect()
}

#[derive(Default, Debug)]
struct Use {
    consumers: u64,
    confirm_channels: u64,
}

#[tokio::test]
async fn dead_letter_publishes_leave_the_consuming_connection_free_to_ack() {
    let worker_id = format!("conn-{}", unique_suffix());
    let platform =
        Platform::start(Setup { worker_env: vec![("WORKER_ID", worker_id.clone())], ..Setup::default() }).await;
    let conn = platform.broker.connect().await;
    let channel = conn.create_channel().await.unwrap();
    channel
        .basic_publish(
            platform.broker.topology.jobs_exchange().into(),
            "normal".into(),
            BasicPublishOptions::default(),
            b"\xff not a job",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let dlq = platform.broker.topology.dlq_queue();
    eventually(Duration::from_secs(30), "the poison message on the DLQ", || async {
        (platform.broker.ready_count(&dlq).await == 1).then_some(())
    })
    .await;

    let names = connection_names();
    let mut uses: HashMap<String, Use> = HashMap::new();
    for ch in rabbitmqctl_json(&["list_channels", "connection", "confirm", "consumer_count"]) {
        let Some(name) = ch["connection"].as_str().and_then(|pid| names.get(pid)) else { continue };
        if !name.contains(&worker_id) {
            continue;
        }
        let entry = uses.entry(name.clone()).or_default();
        entry.consumers += ch["consumer_count"].as_u64().unwrap_or(0);
        entry.confirm_channels += u64::from(ch["confirm"] == true);
    }
    let consuming: Vec<_> = uses.iter().filter(|(_, u)| u.consumers > 0).collect();
    assert_eq!(consuming.len(), 1, "one consuming connection: {uses:?}");
    assert_eq!(consuming[0].1.confirm_channels, 0, "the consuming connection publishes nothing: {uses:?}");
    let publishing = &uses[&format!("worker {worker_id}-publish")];
    assert_eq!((publishing.consumers, publishing.confirm_channels), (0, 1), "{uses:?}");
}

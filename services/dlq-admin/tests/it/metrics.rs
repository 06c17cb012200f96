//! `/metrics` answers without a token, so it must not query Postgres on
//! every scrape (issue #10, item 11).

use crate::helpers::{DlqJobs, World};

async fn scrape(app: &crate::helpers::TestApp) -> String {
    app.get("/metrics", None).await.text().await.unwrap()
}

#[tokio::test]
async fn scrapes_between_samples_show_the_last_values_without_reading_the_database() {
    let world = World::new().await;
    let app = world.app(&["--metrics-sample-interval-ms", "3600000"]).await;
    let first = scrape(&app).await;
    assert!(first.contains("docflow_dlq_size{kind=\"job\"} 0"), "{first}");

    DlqJobs::default().insert(world.pool()).await;
    for _ in 0..20 {
        let again = scrape(&app).await;
        assert!(again.contains("docflow_dlq_size{kind=\"job\"} 0"), "still the first sample: {again}");
    }

    // With sampling on every scrape, the same call sees the new row.
    let eager = world.app(&["--metrics-sample-interval-ms", "0"]).await;
    let fresh = scrape(&eager).await;
    assert!(fresh.contains("docflow_dlq_size{kind=\"job\"} 1"), "{fresh}");
}

//! Outbox rows handed over to their writer's relay: claimed when written,
//! so the relays' polls keep off them, until the writer settles them
//! (deletes what the broker confirmed, holds back what it would not route)
//! or releases them to the polls.

use std::time::Duration;

use job_store::SubmitOutcome;
use job_store::outbox::{self, Deferred};
use test_support::TestDb;

use crate::outputs::submit_claimed;

async fn polled(db: &TestDb) -> Vec<i64> {
    let batch = outbox::lock_batch(&db.pool, 100).await.unwrap();
    batch.rows.iter().map(|r| r.id).collect()
}

async fn handed(db: &TestDb) -> i64 {
    match submit_claimed(db, Some(Duration::from_secs(60))).await.1 {
        SubmitOutcome::Created { outbox_id, .. } => outbox_id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_claimed_row_is_left_to_its_writer_until_it_settles_or_releases_it() {
    let db = TestDb::new().await;
    let (confirmed, unroutable, failed) = (handed(&db).await, handed(&db).await, handed(&db).await);
    let (_, unclaimed) = submit_claimed(&db, None).await;
    let SubmitOutcome::Created { outbox_id: unclaimed, .. } = unclaimed else { panic!("{unclaimed:?}") };
    assert_eq!(polled(&db).await, vec![unclaimed], "the polls take only the row nobody claimed");

    let mut connection = db.pool.acquire().await.unwrap();
    let refusal = Deferred { id: unroutable, error: "no route".into(), delay: Duration::from_secs(30) };
    outbox::settle_handed(&mut connection, &[confirmed], &[refusal]).await.unwrap();
    // A publish that failed gives its rows back; a row held back for its
    // backoff keeps it.
    outbox::release(&mut connection, &[failed, unroutable]).await.unwrap();
    assert_eq!(polled(&db).await, vec![failed, unclaimed]);

    let rows: Vec<(i64, i32, Option<String>, bool)> =
        sqlx::query_as("SELECT id, failures, last_error, coalesce(not_before > now(), false) FROM outbox ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![(unroutable, 1, Some("no route".into()), true), (failed, 0, None, false), (unclaimed, 0, None, false)],
        "the confirmed row is deleted"
    );
}

#[tokio::test]
async fn a_claim_runs_out_by_itself_when_its_writer_never_comes_back() {
    let db = TestDb::new().await;
    let SubmitOutcome::Created { outbox_id, .. } = submit_claimed(&db, Some(Duration::from_millis(300))).await.1 else {
        panic!("not created")
    };
    assert_eq!(polled(&db).await, Vec::<i64>::new());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(polled(&db).await, vec![outbox_id], "any relay takes it once the claim has run out");
}

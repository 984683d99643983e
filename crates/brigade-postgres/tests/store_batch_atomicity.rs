//! An uncapped batch is all or nothing too: a batch that fails after some of its jobs
//! went in leaves none of them, so a caller that sends it again does not enqueue them
//! twice.

mod common;

use brigade_queue::{EnqueueOptions, JobState, NewJob, Store};
use serde_json::json;

/// A batch whose duplicate's follow-up statements fail, made to fail the same way every
/// time by triggers of the test's: the batch's insert finds the unique key taken by a live
/// job (`holder`), and its end ends that job, so the store inserts the duplicate again,
/// which the insert trigger refuses the second time it sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_after_its_insert_leaves_no_job() {
    let store = common::fresh_store().await;
    let keyed = |payload: &str| {
        NewJob::new("batch", json!(payload)).with_options(EnqueueOptions::new().unique_key("K"))
    };
    let holder = store.enqueue(keyed("holder")).await.expect("enqueue").id;
    for statement in [
        "CREATE SEQUENCE poison_seen",
        "CREATE FUNCTION refuse_poison_again() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.payload = '\"poison\"'::jsonb AND nextval('poison_seen') > 1 THEN
                 RAISE EXCEPTION 'the poison job is refused the second time';
             END IF;
             RETURN NEW;
         END $$",
        "CREATE TRIGGER refuse_poison_again BEFORE INSERT ON brigade.jobs
         FOR EACH ROW EXECUTE FUNCTION refuse_poison_again()",
        "CREATE FUNCTION end_the_holder() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             UPDATE brigade.jobs SET state = 'cancelled', finished_at = now()
             WHERE payload = '\"holder\"' AND state IN ('available', 'running');
             RETURN NULL;
         END $$",
        "CREATE TRIGGER end_the_holder AFTER INSERT ON brigade.jobs
         FOR EACH STATEMENT EXECUTE FUNCTION end_the_holder()",
    ] {
        sqlx::query(statement)
            .execute(store.pool())
            .await
            .expect("set the trap");
    }

    let batch = vec![NewJob::new("batch", json!("fresh")), keyed("poison")];
    let refused = store
        .enqueue_batch(batch.clone())
        .await
        .expect_err("the second insert of the poison job fails");
    assert_eq!(refused.into_inner(), batch, "every job comes back");

    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT payload #>> '{}' FROM brigade.jobs WHERE queue = 'batch' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .expect("jobs");
    assert_eq!(payloads, ["holder"], "nothing of the failed batch is left");
    let holder = store.job(holder).await.expect("job").expect("kept");
    assert_eq!(
        holder.state,
        JobState::Available,
        "what the batch's statements did to other jobs is undone with it"
    );
}

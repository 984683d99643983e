//! Ten thousand jobs through two workers with random failures, panics, cancels and
//! shutdowns: every acknowledged enqueue ends in exactly one terminal state.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_ends_in_exactly_one_terminal_state() {
    let seed = std::env::var("BRIGADE_STRESS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("seed {seed} (BRIGADE_STRESS_SEED={seed} replays the plans)");
    let dir = common::TempDir::new();
    let store = common::store_in(&dir).await;
    let report = brigade_queue::testkit::random_accounting(store, 10_000, seed).await;
    println!("{report:#?}");
    assert_eq!(report.jobs, 10_000);
}

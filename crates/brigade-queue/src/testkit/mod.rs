//! The store conformance kit: the contracts of a durable store (design.md, "Contracts every
//! store keeps") written once, as checks that each store runs against itself.
//!
//! A store's test file calls [`store_conformance_tests!`](crate::store_conformance_tests)
//! with an async function that returns a fresh, empty store; every check becomes one
//! `#[tokio::test]`:
//!
//! ```ignore
//! async fn fresh_store() -> MyStore { MyStore::connect(&fresh_database().await).await.unwrap() }
//! brigade_queue::store_conformance_tests!(fresh_store);
//! ```
//!
//! The checks use short leases (a few hundred milliseconds) and wait for the store's clock
//! with generous deadlines; none asserts on speed. [`random_accounting`] is the randomized
//! whole-system check: thousands of jobs through two workers with failures, panics,
//! cancels and shutdowns, every job held to exactly one terminal state.

mod abandon;
mod flaky;
mod random;
mod retention_checks;
mod store_checks;
mod worker_checks;

use std::time::{Duration, Instant};

pub use abandon::abandon_after;
pub use flaky::FlakyStore;
pub use random::{AccountingReport, random_accounting};
pub use retention_checks::*;
pub use store_checks::*;
pub use worker_checks::*;

use crate::{Claim, ClaimRequest, Store};

/// The lease the checks claim with when they let it expire.
pub const SHORT_LEASE: Duration = Duration::from_millis(300);
/// The lease the checks claim with when it must not expire.
pub const LONG_LEASE: Duration = Duration::from_secs(60);
/// How long a check waits for something the store's clock decides.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Claims up to `limit` jobs of `queue` for `lease`, as worker `"kit"`.
///
/// # Panics
///
/// When the store fails: the checks run against a healthy store.
pub async fn claim<S: Store>(store: &S, queue: &str, limit: usize, lease: Duration) -> Vec<Claim> {
    store
        .claim(ClaimRequest::new(queue, "kit", limit, lease))
        .await
        .expect("claim")
}

/// Claims one job of `queue`, retrying until one is due or [`PATIENCE`] runs out.
///
/// # Panics
///
/// When nothing becomes claimable in time.
pub async fn claim_one_eventually<S: Store>(store: &S, queue: &str, lease: Duration) -> Claim {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(claim) = claim(store, queue, 1, lease).await.pop() {
            return claim;
        }
        assert!(
            Instant::now() < deadline,
            "nothing became claimable in {queue} within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits out `lease` and rescues `queue` until the rescuer has moved `expected` jobs.
///
/// # Panics
///
/// When the rescuer has not moved them within [`PATIENCE`].
pub async fn rescue_after<S: Store>(
    store: &S,
    queue: &str,
    lease: Duration,
    expected: u64,
) -> crate::Rescued {
    tokio::time::sleep(lease).await;
    let deadline = Instant::now() + PATIENCE;
    let mut total = crate::Rescued::default();
    loop {
        let rescued = store.rescue(queue).await.expect("rescue");
        total.requeued += rescued.requeued;
        total.dead += rescued.dead;
        if total.total() >= expected {
            return total;
        }
        assert!(
            Instant::now() < deadline,
            "rescued {total:?} of {expected} expired leases within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Generates one `#[tokio::test]` per check of the kit, each on a store from `$fresh`
/// (an async function returning a fresh, empty store). Needs `tokio` with `macros` and
/// `rt-multi-thread` among the caller's dev-dependencies, and brigade-queue's `thread`
/// feature (on by default): a check runs blocking handlers.
#[macro_export]
macro_rules! store_conformance_tests {
    ($fresh:path) => {
        $crate::store_conformance_tests!(@checks $fresh;
            enqueue_claim_complete,
            complete_many_answers_each_lease,
            complete_and_claim_records_then_claims,
            claims_are_exclusive,
            stale_token_is_refused,
            expired_lease_is_redelivered_as_an_attempt,
            returned_jobs_keep_their_place,
            rescued_jobs_go_out_one_per_claim,
            claims_take_at_most_their_limit,
            heartbeat_keeps_the_lease,
            heartbeat_does_not_revive_an_expired_lease,
            retry_waits_for_its_time,
            dead_after_max_attempts_counting_expiries,
            release_is_uncharged,
            unique_keys_allow_one_live_job,
            priority_orders_claims,
            scheduled_jobs_not_early,
            depth_cap_refuses_and_hands_back,
            depth_cap_counts_what_a_batch_adds,
            cancel_waiting_and_running,
            replay_dead_jobs,
            replay_all_brings_back_one_dead_job_per_unique_key,
            a_retry_past_the_horizon_waits_at_it,
            purge_keeps_what_it_should,
            global_rate_limit_is_gcra,
            global_units_are_bounded,
            error_texts_of_any_characters_are_recorded,
            far_future_jobs_are_refused,
            retention_gives_up_a_pass_that_hangs,
            worker_runs_every_job,
            worker_retries_then_buries,
            worker_releases_on_shutdown,
            worker_fences_itself_when_heartbeats_fail,
            worker_rides_out_a_slow_failed_heartbeat,
            worker_rides_out_slow_successful_heartbeats,
            worker_gives_back_a_job_it_cannot_vouch_for_before_its_start,
            worker_gives_back_what_a_late_claim_took,
            worker_sends_a_failed_give_back_again,
            worker_shutdown_gives_back_what_a_late_claim_took,
            worker_starts_nothing_a_claim_answered_after_shutdown_took,
            worker_outlives_a_store_call_that_panics,
            worker_counts_an_ack_answered_late_as_completed,
            worker_counts_a_recorded_retry_claimed_again_as_retried,
            worker_counts_a_recorded_release_claimed_again_as_released,
            worker_shutdown_keeps_the_ends_runs_decided,
            worker_shutdown_ends_while_acks_fail_and_heartbeats_succeed,
            worker_shutdown_with_a_blackholed_store_is_bounded_independently_of_concurrency,
            worker_gives_back_claims_beyond_its_ask,
            worker_buries_jobs_whose_code_panics_outside_the_pool,
            worker_counts_a_zombie_ack_as_stale,
            worker_refuses_undecodable_payloads,
            worker_claims_nothing_more_until_a_rerun_starts,
            worker_shuts_down_while_a_rerun_waits_to_start,
            worker_shutdown_leaves_a_deaf_run,
            worker_builder_refuses_unworkable_settings,
            worker_runs_with_the_longest_settings,
            worker_charges_runs_its_local_pool_refuses,
            worker_waits_for_room_in_a_small_blocking_pool,
        );
    };
    (@checks $fresh:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store = $fresh().await;
                $crate::testkit::$check(store).await;
            }
        )*
    };
}

//! Bad configuration is a typed error from `build()`, never a panic.

use std::time::Duration;

use brigade_core::{BoxAsyncJob, ConfigError};
use brigade_tokio::TokioPool;

type Job = BoxAsyncJob<(), String>;

#[test]
fn build_outside_a_runtime_without_one_is_an_error() {
    let error = TokioPool::<Job>::builder().workers(1).build().unwrap_err();
    assert_eq!(error, ConfigError::NoRuntime);
    assert!(
        error.to_string().contains("own_runtime"),
        "says what to do: {error}"
    );
}

#[test]
fn bad_settings_are_typed_errors() {
    let builder = || TokioPool::<Job>::builder().own_runtime(1);
    let cases = [
        (
            builder().workers(0).build().unwrap_err(),
            ConfigError::ZeroWorkers,
        ),
        (
            builder().min_workers(3).max_workers(2).build().unwrap_err(),
            ConfigError::MinAboveMax { min: 3, max: 2 },
        ),
        (
            builder().queue_capacity(0).build().unwrap_err(),
            ConfigError::ZeroCapacity,
        ),
        (
            builder()
                .min_workers(1)
                .max_workers(4)
                .keep_alive(Duration::ZERO)
                .build()
                .unwrap_err(),
            ConfigError::ZeroDuration {
                setting: "keep_alive",
            },
        ),
    ];
    for (got, expected) in cases {
        assert_eq!(got, expected);
    }
    let no_threads = TokioPool::<Job>::builder()
        .own_runtime(0)
        .build()
        .unwrap_err();
    assert!(
        matches!(no_threads, ConfigError::OutOfRange { .. }),
        "{no_threads:?}"
    );
}

#[test]
fn defaults_follow_the_thread_backend() {
    let pool = TokioPool::<Job>::builder()
        .own_runtime(1)
        .max_workers(3)
        .build()
        .unwrap();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(pool.stats().workers, cores.min(3));
    for _ in 0..30 {
        // Ten slots per maximum worker: 30 jobs fit without waiting even if none started.
        let job = BoxAsyncJob::new(|cx: brigade_core::JobContext| async move {
            cx.token().cancelled().await;
            Ok(())
        });
        drop(pool.try_submit(job).expect("room for 30"));
    }
    pool.runtime_handle().clone().block_on(pool.shutdown_now());
}

#[tokio::test]
async fn resize_validates_and_keeps_the_range() {
    let pool = TokioPool::<Job>::builder().workers(2).build().unwrap();
    assert_eq!(pool.resize(0, 0), Err(ConfigError::ZeroWorkers));
    assert_eq!(
        pool.resize(5, 1),
        Err(ConfigError::MinAboveMax { min: 5, max: 1 })
    );
    assert_eq!(pool.stats().workers, 2);
}

#[test]
fn a_name_its_runtime_threads_cannot_carry_is_an_error_not_a_panic() {
    let error = TokioPool::<Job>::builder()
        .name("bad\0name")
        .own_runtime(1)
        .workers(1)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::OutOfRange {
                setting: "name",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_errgroup_limit_beyond_the_semaphore_is_no_panic() {
    let mut group = brigade_tokio::ErrGroup::<String>::with_limit(usize::MAX).unwrap();
    group
        .spawn(|_token: brigade_core::CancellationToken| async { Ok(()) })
        .await;
    assert_eq!(group.wait().await, Ok(()));
}

#[test]
fn extreme_durations_and_capacities_build_without_panicking() {
    let pool = TokioPool::<Job>::builder()
        .own_runtime(1)
        .min_workers(1)
        .max_workers(usize::MAX)
        .keep_alive(Duration::MAX)
        .queue_capacity(usize::MAX)
        .build()
        .unwrap();
    drop(pool);
}

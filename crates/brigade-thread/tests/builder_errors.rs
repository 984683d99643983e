//! Every invalid configuration is a typed error from `build()`, never a panic.

use std::time::Duration;

use brigade_core::ConfigError;
use brigade_thread::BoxPool;

type Pool = BoxPool<(), String>;

#[test]
fn zero_workers_is_an_error() {
    assert_eq!(
        Pool::builder().workers(0).build().unwrap_err(),
        ConfigError::ZeroWorkers
    );
    assert_eq!(
        Pool::builder()
            .min_workers(0)
            .max_workers(0)
            .build()
            .unwrap_err(),
        ConfigError::ZeroWorkers
    );
    assert_eq!(
        Pool::builder().max_workers(0).build().unwrap_err(),
        ConfigError::ZeroWorkers
    );
}

#[test]
fn min_above_max_is_an_error() {
    assert_eq!(
        Pool::builder()
            .min_workers(5)
            .max_workers(2)
            .build()
            .unwrap_err(),
        ConfigError::MinAboveMax { min: 5, max: 2 }
    );
}

#[test]
fn zero_capacity_is_an_error() {
    assert_eq!(
        Pool::builder()
            .workers(1)
            .queue_capacity(0)
            .build()
            .unwrap_err(),
        ConfigError::ZeroCapacity
    );
}

#[test]
fn zero_keep_alive_with_an_elastic_range_is_an_error() {
    assert_eq!(
        Pool::builder()
            .min_workers(1)
            .max_workers(3)
            .keep_alive(Duration::ZERO)
            .build()
            .unwrap_err(),
        ConfigError::ZeroDuration {
            setting: "keep_alive"
        }
    );
    // A fixed pool never retires, so its keep-alive does not matter.
    assert!(
        Pool::builder()
            .workers(1)
            .keep_alive(Duration::ZERO)
            .build()
            .is_ok()
    );
}

#[test]
fn zero_stack_and_nul_thread_names_are_errors() {
    assert!(matches!(
        Pool::builder()
            .workers(1)
            .stack_size(0)
            .build()
            .unwrap_err(),
        ConfigError::OutOfRange {
            setting: "stack_size",
            ..
        }
    ));
    assert!(matches!(
        Pool::builder()
            .workers(1)
            .thread_name("a\0b")
            .build()
            .unwrap_err(),
        ConfigError::OutOfRange {
            setting: "thread_name",
            ..
        }
    ));
    assert!(matches!(
        Pool::builder().workers(1).name("a\0b").build().unwrap_err(),
        ConfigError::OutOfRange {
            setting: "thread_name",
            ..
        }
    ));
}

#[test]
fn resize_rejects_bad_ranges_and_keeps_the_old_one() {
    let pool = Pool::builder().workers(2).build().unwrap();
    assert_eq!(pool.resize(0, 0).unwrap_err(), ConfigError::ZeroWorkers);
    assert_eq!(
        pool.resize(3, 1).unwrap_err(),
        ConfigError::MinAboveMax { min: 3, max: 1 }
    );
    assert_eq!(pool.stats().workers, 2);
}

#[test]
fn defaults_build_a_usable_pool() {
    let pool = Pool::builder().build().unwrap();
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(pool.stats().workers, workers);
    assert_eq!(pool.name(), brigade_thread::DEFAULT_NAME);
    // Only a minimum: the maximum is at least the default.
    let pool = Pool::builder().min_workers(workers + 1).build().unwrap();
    assert_eq!(pool.stats().workers, workers + 1);
    // Only a maximum below the default: the minimum follows it down.
    let pool = Pool::builder().max_workers(1).build().unwrap();
    assert_eq!(pool.stats().workers, 1);
}

#[test]
fn a_thread_the_system_cannot_start_is_a_spawn_error() {
    // No system maps a 1 PiB stack.
    let error = Pool::builder()
        .workers(2)
        .stack_size(1 << 50)
        .build()
        .unwrap_err();
    assert!(matches!(error, ConfigError::Spawn(_)), "{error:?}");
    // The system's own error is the source, for reporters that walk the chain.
    let source = std::error::Error::source(&error).expect("the system's error");
    assert!(
        source.downcast_ref::<std::io::Error>().is_some(),
        "{source:?}"
    );
}

#[test]
fn an_absurd_stack_size_is_an_error_not_a_panic() {
    let error = Pool::builder()
        .workers(1)
        .stack_size(usize::MAX)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::OutOfRange {
                setting: "stack_size",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn an_endless_keep_alive_works() {
    let pool = Pool::builder()
        .min_workers(1)
        .max_workers(2)
        .keep_alive(Duration::MAX)
        .build()
        .unwrap();
    let handle = pool
        .submit(brigade_core::BoxJob::new(|_: &brigade_core::JobContext| {
            Ok(())
        }))
        .unwrap();
    assert_eq!(handle.join(), Ok(()));
    assert!(pool.shutdown().is_clean());
}

#[test]
fn a_queue_too_large_to_allocate_is_an_error_not_a_panic_in_the_channel() {
    for capacity in [
        usize::MAX,
        usize::MAX / 2,
        brigade_thread::MAX_QUEUE_CAPACITY + 1,
    ] {
        assert!(
            matches!(
                Pool::builder().workers(1).queue_capacity(capacity).build(),
                Err(ConfigError::OutOfRange {
                    setting: "queue_capacity",
                    ..
                })
            ),
            "{capacity}"
        );
    }
}

#[test]
fn extreme_worker_counts_and_durations_build_without_panicking() {
    // An explicit capacity, so the test does not allocate the largest queue there is.
    let pool = Pool::builder()
        .min_workers(1)
        .max_workers(usize::MAX)
        .keep_alive(Duration::MAX)
        .queue_capacity(8)
        .build()
        .unwrap();
    assert!(
        pool.submit(brigade_core::BoxJob::new(
            |_: &brigade_core::JobContext| Ok(())
        ))
        .unwrap()
        .join()
        .is_ok()
    );
    assert!(pool.resize(1, usize::MAX).is_ok());
}

/// A count of workers to start past any machine's threads is refused, at build and at
/// resize, instead of a pool that spawns until the system refuses and then unwinds a count
/// of `usize::MAX`. (An elastic maximum of `usize::MAX` is fine: see above.)
#[test]
fn a_worker_count_past_max_workers_is_an_error() {
    let too_many = ConfigError::OutOfRange {
        setting: "min_workers",
        expected: "at most MAX_WORKERS (1,048,576)",
    };
    for workers in [brigade_core::MAX_WORKERS + 1, usize::MAX] {
        assert_eq!(
            Pool::builder().workers(workers).build().unwrap_err(),
            too_many
        );
    }
    let pool = Pool::builder().workers(1).build().unwrap();
    assert_eq!(pool.resize(usize::MAX, usize::MAX).unwrap_err(), too_many);
    assert_eq!(pool.stats().workers, 1);
    pool.shutdown();
}

//! `ErrGroup`: bounded, the first error cancels the rest and `wait` returns it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brigade_core::CancellationToken;
use brigade_tokio::ErrGroup;

#[tokio::test(start_paused = true)]
async fn the_first_error_cancels_the_others_and_wait_returns_it() {
    let mut group = ErrGroup::with_limit(4).unwrap();
    let stopped_early = Arc::new(AtomicUsize::new(0));
    for item in 0..4u32 {
        let stopped_early = Arc::clone(&stopped_early);
        group
            .spawn(move |token: CancellationToken| async move {
                if item == 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return Err(format!("item {item} failed"));
                }
                tokio::select! {
                    () = token.cancelled() => {
                        stopped_early.fetch_add(1, Ordering::SeqCst);
                        Err("cancelled".to_string())
                    }
                    () = tokio::time::sleep(Duration::from_secs(3600)) => Ok(()),
                }
            })
            .await;
    }
    let start = tokio::time::Instant::now();
    assert_eq!(group.wait().await, Err("item 0 failed".to_string()));
    assert_eq!(
        stopped_early.load(Ordering::SeqCst),
        3,
        "the others were cancelled"
    );
    assert!(start.elapsed() < Duration::from_secs(3600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_waits_at_the_limit() {
    let mut group = ErrGroup::<String>::with_limit(3).unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    for _ in 0..30 {
        let (running, most) = (Arc::clone(&running), Arc::clone(&most));
        group
            .spawn(move |_token| async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert!(group.counts().running() <= 3);
    }
    let counts = group.counts();
    assert_eq!(group.wait().await, Ok(()));
    assert_eq!(most.load(Ordering::SeqCst), 3);
    assert_eq!(counts.started, 30);
}

#[tokio::test]
async fn a_parent_token_cancels_the_group() {
    let request = CancellationToken::new();
    let mut group = ErrGroup::<String>::new().child_of(&request);
    group
        .spawn(|token| async move {
            token.cancelled().await;
            Err("request cancelled".into())
        })
        .await;
    request.cancel();
    assert_eq!(group.wait().await, Err("request cancelled".to_string()));
}

#[tokio::test]
#[should_panic(expected = "task exploded")]
async fn a_panicking_task_panics_wait() {
    let mut group = ErrGroup::<String>::new();
    group
        .spawn(|_token| async { panic!("task exploded") })
        .await;
    let _ = group.wait().await;
}

#[tokio::test]
async fn a_panic_cancels_the_token_and_is_counted_before_anyone_waits() {
    let mut group = ErrGroup::<String>::new();
    group
        .spawn(|_token: CancellationToken| async { panic!("task exploded") })
        .await;
    let token = group.token();
    tokio::time::timeout(Duration::from_secs(20), token.cancelled())
        .await
        .expect("the panic cancelled the group's token without a wait");
    // The count follows the cancellation closely; give the task time to finish unwinding.
    for _ in 0..20_000 {
        if group.counts().running() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let counts = group.counts();
    assert_eq!((counts.started, counts.running()), (1, 0), "{counts:?}");
    let waited = tokio::spawn(group.wait()).await;
    assert!(waited.unwrap_err().is_panic(), "wait resumes the panic");
}

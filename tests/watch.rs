//! Changes are pushed: watches wake on each change of the record, never miss one, and
//! an idle operation wakes nobody.

use std::time::Duration;

use futures::StreamExt as _;
use orchestrator::{OperationSource, OperationSpec, OperationStatus, Operations};

#[tokio::test]
async fn a_watch_wakes_on_every_kind_of_change_and_never_misses_one() {
    let ops = Operations::new();
    let id = ops
        .create(OperationSpec::new("job").with_total_steps(3))
        .unwrap();
    let mut watch = ops.watch(&id).unwrap();
    let wake = Duration::from_secs(5);

    // A change made before `changed` is awaited is reported at once.
    ops.start(&id).unwrap();
    tokio::time::timeout(wake, watch.changed()).await.unwrap();
    assert_eq!(watch.get().status, OperationStatus::Running);

    let ctx = ops.context(&id).unwrap();
    ctx.progress(1, "one");
    ctx.progress(2, "two");
    // Coalesced: one wake-up shows the latest state.
    tokio::time::timeout(wake, watch.changed()).await.unwrap();
    assert_eq!(watch.get().progress.steps_completed, 2);

    // Nothing changed: no wake-up.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), watch.changed())
            .await
            .is_err()
    );

    // A change from another task wakes a waiting watch.
    let waiter = tokio::spawn(async move {
        watch.changed().await;
        watch
    });
    tokio::task::yield_now().await;
    ops.cancel(&id, "stop").unwrap();
    let mut watch = tokio::time::timeout(wake, waiter).await.unwrap().unwrap();
    assert_eq!(watch.get().cancel_reason.as_deref(), Some("stop"));

    ctx.set_context("epoch", 3);
    tokio::time::timeout(wake, watch.changed()).await.unwrap();
    ops.fail(&id, "gave up").unwrap();
    tokio::time::timeout(wake, watch.changed()).await.unwrap();
    assert_eq!(watch.get().status, OperationStatus::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn the_registry_pushes_updates_instead_of_polling() {
    let ops = Operations::new();
    let id = ops.create(OperationSpec::new("job")).unwrap();
    ops.start(&id).unwrap();
    let poll = Duration::from_millis(100);
    let updates = ops.updates(&id, poll);
    let mut updates = std::pin::pin!(updates);
    let first = updates.next().await.unwrap().unwrap();
    assert_eq!(first.status, OperationStatus::Running);
    // Idle for ten simulated seconds: a polling source would have yielded 100 copies.
    assert!(
        tokio::time::timeout(Duration::from_secs(10), updates.next())
            .await
            .is_err(),
        "an idle operation produced an update"
    );
    ops.context(&id).unwrap().progress(1, "moved");
    let moved = tokio::time::timeout(Duration::from_secs(1), updates.next())
        .await
        .expect("the change arrives within one poll interval")
        .unwrap()
        .unwrap();
    assert_eq!(moved.progress.current_step, "moved");
    ops.complete(&id, ()).unwrap();
    let last = updates.next().await.unwrap().unwrap();
    assert_eq!(last.status, OperationStatus::Completed);
    assert!(
        updates.next().await.is_none(),
        "the stream ends after the terminal record"
    );
}

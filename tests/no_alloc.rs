//! A status read that only looks allocates nothing (`Operations::with_info` and
//! `wait_with` against `get` and `wait`), nor does naming a kind in code again;
//! counted by a global allocator that tallies this thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use orchestrator::{OperationSpec, OperationStatus, Operations};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the count is a
// thread-local `Cell` with no destructor, so it never allocates itself.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: as `System.realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// How many allocations `f` makes on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    (r, ALLOCATIONS.with(Cell::get) - before)
}

#[tokio::test(flavor = "current_thread")]
async fn looking_at_a_running_operation_allocates_nothing() {
    let ops = Operations::new();
    let handle = ops
        .spawn(
            OperationSpec::new("looked_at")
                .with_description("a described run")
                .with_total_steps(4),
            |ctx| async move {
                ctx.progress(1, "Iteration 1/4");
                ctx.cancelled().await;
                Ok::<_, String>(())
            },
        )
        .expect("spawn");
    tokio::task::yield_now().await;
    let id = handle.id().clone();

    let (read, count) = allocations(|| {
        ops.with_info(&id, |op| {
            let step_len = op.with_current_step(str::len);
            (
                op.status(),
                op.progress().percentage,
                step_len,
                op.description().len(),
                op.is_cancelled(),
            )
        })
    });
    let read = read.expect("known");
    assert_eq!(read, (OperationStatus::Running, 25.0, 13, 15, false));
    assert_eq!(count, 0, "with_info allocated");

    // The counter does count: a snapshot allocates.
    let (info, count) = allocations(|| ops.get(&id));
    assert_eq!(info.expect("known").progress.current_step, "Iteration 1/4");
    assert!(count > 0, "get builds a record");

    ops.cancel(&id, "enough").expect("cancel");
    let _ = handle.outcome().await;
    // The final record: a waiter that reads the status and the reason copies nothing.
    let before = ALLOCATIONS.with(Cell::get);
    let (status, reason) = ops
        .wait_with(&id, |op| (op.status(), op.cancel_reason()))
        .await
        .expect("known");
    let count = ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(status, OperationStatus::Cancelled);
    assert_eq!(reason.as_deref(), Some("enough"));
    assert_eq!(count, 0, "wait_with allocated");
}

/// A kind named in code (`OperationSpec::new("report")`, every macro-generated
/// operation) is made once: naming it again allocates nothing.
#[test]
fn naming_a_kind_in_code_again_allocates_nothing() {
    let first = orchestrator::OperationType::from("named_in_code");
    let (again, count) = allocations(|| orchestrator::OperationType::from("Named-In-Code"));
    assert_eq!(again, first);
    assert_eq!(count, 0, "the kind was made anew");
    // The counter does count: a name from outside is validated into a new string.
    let (parsed, count) = allocations(|| orchestrator::OperationType::new("named_in_code"));
    assert_eq!(parsed.expect("valid"), first);
    assert!(count > 0);
}

/// What one no-op operation costs the allocator: its entry, its token's node and its
/// task when spawned, nothing more while it runs, ends and is joined. A new allocation
/// on this path (issue 14's lifecycle cost) fails here.
#[tokio::test(flavor = "current_thread")]
async fn a_noop_operation_allocates_three_times_and_nothing_while_it_runs() {
    let ops = Operations::builder().without_sweeper().build();
    let noop = |_ctx| async { Ok::<_, String>(()) };
    // Warm: the map's shard and the runtime's queues have room, and so has the list of
    // finished ids (48 of its 64 slots used: its amortised growth is not this op's).
    for _ in 0..48 {
        let handle = ops.spawn(OperationSpec::new("noop"), noop).expect("spawn");
        let _ = handle.outcome().await;
    }
    ops.cleanup(std::time::Duration::ZERO);

    let (handle, spawned) =
        allocations(|| ops.spawn(OperationSpec::new("noop"), noop).expect("spawn"));
    assert_eq!(spawned, 3, "entry, token node, task");
    let before = ALLOCATIONS.with(Cell::get);
    let outcome = handle.outcome().await;
    let ran = ALLOCATIONS.with(Cell::get) - before;
    assert!(matches!(outcome, orchestrator::Outcome::Completed(())));
    assert_eq!(ran, 0, "running, ending and joining allocated");
}

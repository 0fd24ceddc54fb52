//! Running a future to its end from synchronous code, on a current-thread runtime of
//! its own: what the `*_sync` entry points share.

use std::future::Future;

use crate::{OrchestratorError, Result};

/// The drivers the run's runtime enables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drivers {
    /// Timers only: enough for an operation of the local registry.
    Time,
    /// Timers and I/O: for a run that talks to the network (a routed start).
    #[cfg_attr(not(feature = "host"), allow(dead_code))]
    All,
}

/// Builds the future with `make` and runs it to its end on a new current-thread
/// runtime, blocking the calling thread.
///
/// Outside any runtime the run happens on the calling thread. Inside one (where
/// blocking on a second runtime is not allowed) it moves to a scoped helper thread, so
/// the caller's runtime is free to make progress elsewhere; `make` is called on that
/// thread, so the future need not be `Send`. A panic of the future is raised again
/// in the caller.
///
/// # Errors
///
/// [`OrchestratorError::Runtime`] if the runtime cannot be built.
pub(crate) fn block_on_own_runtime<F, Fut>(drivers: Drivers, make: F) -> Result<Fut::Output>
where
    F: FnOnce() -> Fut + Send,
    Fut: Future,
    Fut::Output: Send,
{
    let run = move || -> Result<Fut::Output> {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        match drivers {
            Drivers::Time => builder.enable_time(),
            Drivers::All => builder.enable_all(),
        };
        let runtime = builder.build().map_err(OrchestratorError::Runtime)?;
        Ok(runtime.block_on(make()))
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return run();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(run)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::time::Duration;

    use super::*;

    /// Generous: the bound only turns a hang into a failure.
    const BOUND: Duration = Duration::from_secs(10);

    #[test]
    fn runs_on_the_calling_thread_outside_a_runtime() {
        let caller = std::thread::current().id();
        let (value, thread) = block_on_own_runtime(Drivers::Time, || async {
            // Not `Send`: the future is built where it runs.
            let local = Rc::new(40);
            tokio::time::sleep(Duration::from_millis(1)).await;
            (*local + 2, std::thread::current().id())
        })
        .unwrap();
        assert_eq!(value, 42);
        assert_eq!(thread, caller);
    }

    #[test]
    fn enables_io_when_asked() {
        let bound = block_on_own_runtime(Drivers::All, || async {
            tokio::net::TcpListener::bind("127.0.0.1:0").await.is_ok()
        })
        .unwrap();
        assert!(bound);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inside_a_runtime_the_callers_runtime_keeps_going() {
        // A task of the caller's runtime answers a request made from the helper's run:
        // the run can only end if the caller's runtime makes progress meanwhile.
        let (ask, asked) = tokio::sync::oneshot::channel::<u32>();
        let (answer, answered) = tokio::sync::oneshot::channel::<u32>();
        let (ready, is_ready) = tokio::sync::oneshot::channel::<()>();
        let echo = tokio::spawn(async move {
            ready.send(()).unwrap();
            let n = asked.await.unwrap();
            answer.send(n + 1).unwrap();
        });
        // Parked on `asked`, so the wake-up comes from outside the runtime's workers.
        is_ready.await.unwrap();
        let caller = std::thread::current().id();
        let (reply, thread) = block_on_own_runtime(Drivers::Time, move || async move {
            ask.send(41).unwrap();
            let reply = tokio::time::timeout(BOUND, answered).await;
            (reply, std::thread::current().id())
        })
        .unwrap();
        assert_eq!(reply.expect("the caller's runtime stalled").unwrap(), 42);
        assert_ne!(thread, caller, "ran on a helper thread");
        echo.await.unwrap();
    }

    #[test]
    fn a_panic_of_the_helper_thread_is_raised_again() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let caught = std::panic::catch_unwind(|| {
            block_on_own_runtime(Drivers::Time, || async { panic!("boom in the helper") })
        })
        .expect_err("the panic reaches the caller");
        assert_eq!(caught.downcast_ref::<&str>(), Some(&"boom in the helper"));
    }
}

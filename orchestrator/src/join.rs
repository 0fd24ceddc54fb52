//! Awaiting a spawned task: its value, or its panic raised again in the awaiter.

use tokio::task::JoinError;

/// The task's value; `None` when it was cancelled (aborted, or its runtime shut
/// down). A panic of the task is raised again here, with its payload, so the awaiter
/// fails as the task did instead of seeing a generic error.
pub(crate) fn joined<T>(result: Result<T, JoinError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_a_cancellation_and_a_panic() {
        assert_eq!(joined(tokio::spawn(async { 7 }).await), Some(7));

        let pending = tokio::spawn(std::future::pending::<()>());
        pending.abort();
        assert_eq!(joined(pending.await), None);

        let panicked = tokio::spawn(async { panic!("boom in the task") }).await;
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| joined::<()>(panicked)))
                .expect_err("the panic is raised again");
        assert_eq!(caught.downcast_ref::<&str>(), Some(&"boom in the task"));
    }
}

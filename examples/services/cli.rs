//! What the CLI examples share: follow an operation with a progress bar, cancelling it
//! through the registry on the first Ctrl+C and leaving at once on the second.

use orchestrator::{OperationId, OperationInfo, Operations, ProgressRenderer, SourceError};

/// Draws the progress of `id` until it ends and returns its final record.
///
/// The first Ctrl+C cancels the operation through the registry (as any other client
/// would); the operation then stops at its next cancellation check and ends
/// `CANCELLED`. A second Ctrl+C exits the process at once with code 130.
///
/// # Errors
///
/// The renderer's, when the operation disappears from the registry.
pub async fn follow_with_ctrl_c(
    ops: &Operations,
    id: &OperationId,
) -> Result<OperationInfo, SourceError> {
    let watcher = {
        let (ops, id) = (ops.clone(), id.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            eprintln!("\nCancelling… (Ctrl+C again to exit now)");
            let _ = ops.cancel(&id, "cancelled by user (Ctrl+C)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        })
    };
    let result = ProgressRenderer::new().follow(ops, id).await;
    watcher.abort();
    result
}

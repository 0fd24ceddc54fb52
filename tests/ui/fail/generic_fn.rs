use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy")]
async fn count<N: Into<u64>>(ctx: OperationContext, n: N) -> Result<u64, String> {
    let n = n.into();
    ctx.progress(n, "counting");
    Ok(n)
}

fn main() {}

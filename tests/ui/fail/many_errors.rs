use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "dummy", total_steps = 1, total_steps = 2, colour = "red")]
fn count<'a>(ctx: &OperationContext, (a, b): (u64, u64), name: &'a str) -> u64 {
    ctx.progress(a + b, name);
    a
}

fn main() {}

//! `total_steps` may be any expression over the parameters, of any integer type.

use orchestrator::{OperationContext, Operations, managed_operation};

#[managed_operation(operation_type = "batch", total_steps = batches * per_batch)]
async fn process(ctx: OperationContext, batches: u32, per_batch: u32) -> Result<u32, String> {
    ctx.progress(1, "processing");
    Ok(batches * per_batch)
}

#[managed_operation(operation_type = "batch", total_steps = items.len() + 1)]
async fn process_items(ctx: OperationContext, items: Vec<u8>) -> Result<usize, String> {
    ctx.progress(1, "processing");
    Ok(items.len())
}

fn main() {
    let ops = Operations::new();
    let outcome = run_process_sync(&ops, 2, 3).unwrap();
    assert_eq!(outcome.value(), Some(&6));
    let outcome = run_process_items_sync(&ops, vec![1, 2]).unwrap();
    assert_eq!(outcome.value(), Some(&2));
}

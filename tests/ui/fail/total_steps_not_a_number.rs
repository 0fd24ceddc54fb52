use orchestrator::{OperationContext, managed_operation};

#[managed_operation(operation_type = "data_load", total_steps = symbol)]
async fn load(ctx: OperationContext, symbol: String) -> Result<usize, String> {
    ctx.progress(1, format!("loading {symbol}"));
    Ok(symbol.len())
}

fn main() {}

//! The free-fn form: the generated fns take `ops: &Operations` first.

use orchestrator::{
    OperationContext, Operations, Outcome, StartedOperation, managed_operation,
};

/// Loads every symbol.
#[managed_operation(operation_type = "data_load", total_steps = symbols.len())]
pub async fn load_bars(ctx: OperationContext, symbols: Vec<String>) -> Result<usize, String> {
    for (i, symbol) in symbols.iter().enumerate() {
        ctx.checkpoint().map_err(|e| e.to_string())?;
        ctx.progress(i as u64 + 1, format!("loading {symbol}"));
    }
    Ok(symbols.len())
}

fn main() {
    let _: fn(&Operations, Vec<String>) -> orchestrator::Result<StartedOperation> = start_load_bars;
    let _: fn(&Operations, Vec<String>) -> orchestrator::Result<Outcome<usize, String>> =
        run_load_bars_sync;
    let ops = Operations::new();
    let _run = run_load_bars(&ops, Vec::new());
    let _original = load_bars(OperationContext::detached(), Vec::new());
}

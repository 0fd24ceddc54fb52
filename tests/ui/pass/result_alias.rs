//! Any alias of `Result` is accepted: the macro reads `T` and `E` through a trait, not
//! from the spelling of the return type.

use orchestrator::{OperationContext, Operations, Outcome, managed_operation};

#[derive(Debug)]
pub struct MyErr;

impl std::fmt::Display for MyErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}

/// The `anyhow::Result` shape: one parameter, the error fixed.
type Result<T> = std::result::Result<T, MyErr>;

/// A fully applied alias, no generics left.
type Answer = std::result::Result<u64, String>;

#[managed_operation(operation_type = "alias")]
async fn local_alias(ctx: OperationContext) -> Result<u64> {
    ctx.checkpoint().map_err(|_| MyErr)?;
    Ok(1)
}

#[managed_operation(operation_type = "alias")]
async fn io_result(_ctx: OperationContext) -> std::io::Result<Vec<u8>> {
    Ok(vec![1, 2])
}

#[managed_operation(operation_type = "alias")]
async fn full_alias(_ctx: OperationContext) -> Answer {
    Ok(42)
}

#[managed_operation(operation_type = "alias")]
async fn core_path(_ctx: OperationContext) -> ::core::result::Result<(), String> {
    Ok(())
}

fn main() {
    let ops = Operations::new();
    let outcome: Outcome<u64, MyErr> = run_local_alias_sync(&ops).unwrap();
    assert!(matches!(outcome, Outcome::Completed(1)));
    let outcome: Outcome<Vec<u8>, std::io::Error> = run_io_result_sync(&ops).unwrap();
    assert_eq!(outcome.value(), Some(&vec![1, 2]));
    assert_eq!(run_full_alias_sync(&ops).unwrap().value(), Some(&42));
    assert!(run_core_path_sync(&ops).unwrap().is_completed());
}

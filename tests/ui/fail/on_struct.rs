use orchestrator::managed_operation;

#[managed_operation(operation_type = "dummy")]
struct Count;

fn main() { let _ = Count; }

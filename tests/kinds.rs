//! Kind names written in code are kept once per process, up to a bound (its own test
//! binary: the table is process-wide).

use orchestrator::OperationType;

/// How many distinct names the process keeps (see `kind.rs`).
const CAPACITY: usize = 256;

#[test]
fn names_are_shared_up_to_the_bound_then_made_anew() {
    let shared = |name: &str| {
        let (a, b) = (OperationType::from(name), OperationType::from(name));
        assert_eq!(a, b);
        assert_eq!(a.as_str(), name.to_uppercase());
        std::ptr::eq(a.as_str(), b.as_str())
    };
    for i in 0..CAPACITY {
        assert!(shared(&format!("kept_{i}")), "kept_{i} is kept");
    }
    for i in 0..10 {
        assert!(!shared(&format!("late_{i}")), "late_{i} is past the bound");
    }
    // The kept ones stay kept.
    assert!(shared("kept_0") && shared(&format!("kept_{}", CAPACITY - 1)));
}

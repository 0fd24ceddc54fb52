#!/usr/bin/env bash
# Builds and tests the consumer crate (outside the workspace) twice: with its own
# reqwest as plain as it comes, and with its own reqwest's TLS. Shares the
# workspace's target dir, so the common dependencies are built once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cargo test --locked --manifest-path "$here/Cargo.toml" --target-dir "$target"
cargo test --locked --manifest-path "$here/Cargo.toml" --target-dir "$target" --features tls

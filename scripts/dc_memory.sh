#!/usr/bin/env bash
# test_dc's memory per idle connection and per active client, and the connection type's size: see
# examples/dc_memory.rs. Arguments go to it (--idle N,.. --active N,.. --budget-mib M --dc PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --features std --example test_dc --example dc_memory
exec "${CARGO_TARGET_DIR:-target}/release/examples/dc_memory" "$@"

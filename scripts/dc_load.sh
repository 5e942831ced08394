#!/usr/bin/env bash
# test_dc's throughput per core of its CPU (RPC load on stored keys, handshake load beside the modpow floor): see
# examples/dc_load.rs. Arguments go to it (--sessions N,.. --depth D --secs S --rpc ping|nearest --handshakes C,..
# --hs-secs S --dc PATH ...).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --features std --example test_dc --example dc_load
exec "${CARGO_TARGET_DIR:-target}/release/examples/dc_load" "$@"

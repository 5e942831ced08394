#!/usr/bin/env bash
# Line coverage of src/session and src/handshake reached by the checked-in corpora of the session, connection, handshake,
# PFS and packet targets (the corpora the campaign grew), as llvm-cov prints it per file and in total.
#
#   fuzz/coverage.sh [TARGET ...]
#
# Needs nightly with llvm-tools (`rustup component add llvm-tools-preview --toolchain nightly`) and cargo-fuzz. The
# coverage build runs with `cfg(fuzzing)`, so the plaintext records of the session targets reach the engine past the
# msg_key check the way they do under libFuzzer. Run it on a tree whose files have not moved since the build (llvm-cov
# lists the files that exist under the source directories).
set -euo pipefail
cd "$(dirname "$0")"
if [ $# -gt 0 ]; then targets=("$@"); else
  targets=(session_client session_server handshake_client handshake_server pfs_inner_method packet_decrypt connection_dc)
fi
out=${FUZZ_OUT:-/tmp/mtproto-fuzz}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$out/target}
sysroot=$(rustc +nightly --print sysroot)
tools=$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin
objects=()
profiles=()
for t in "${targets[@]}"; do
  cargo +nightly fuzz coverage -s none "$t" "corpus/$t" >"$out/$t.coverage.log" 2>&1
  # cargo-fuzz builds coverage binaries under fuzz/target whatever CARGO_TARGET_DIR says.
  objects+=(-object "target/x86_64-unknown-linux-gnu/coverage/x86_64-unknown-linux-gnu/release/$t")
  profiles+=("coverage/$t/coverage.profdata")
done
"$tools/llvm-profdata" merge -sparse "${profiles[@]}" -o "$out/merged.profdata"
src=$(cd .. && pwd)/src
"$tools/llvm-cov" report "${objects[@]}" -instr-profile="$out/merged.profdata" -sources "$src/session" "$src/handshake"

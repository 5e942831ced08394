#!/usr/bin/env bash
# A fuzzing campaign at depth: every target (or the ones named) runs for SECONDS on libFuzzer, and what it found that
# adds coverage is merged into the checked-in corpus (the seeds stay; new inputs are named by their SHA-1).
#
#   fuzz/campaign.sh [SECONDS] [TARGET ...]      # default 600 s per target, every target
#
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`). No sanitizer: the crate forbids `unsafe`, so ASan would
# only halve the executions; debug assertions are on, so an arithmetic overflow is a finding. Crashes land in
# $FUZZ_OUT/artifacts/TARGET; the campaign goes on with the next target and exits non-zero at the end. A line per
# target (executions, edges, features, corpus before and after) goes to $FUZZ_OUT/summary.tsv. Several campaigns may
# share $FUZZ_OUT (one per core): each target is taken by the first campaign that reaches it.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//'); fi
out=${FUZZ_OUT:-/tmp/mtproto-fuzz}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$out/target}
mkdir -p "$out/artifacts"
cargo +nightly fuzz build -s none -a -O || exit 2
bin_dir=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$out/taken"
  mkdir "$out/taken/$t" 2>/dev/null || continue
  grow=$out/grow/$t
  mkdir -p "$grow" "$out/artifacts/$t"
  before=$(ls "corpus/$t" | wc -l)
  "$bin_dir/$t" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" \
    "$grow" "corpus/$t" >"$out/$t.log" 2>&1
  rc=$?
  [ $rc -ne 0 ] && failed=1
  "$bin_dir/$t" -merge=1 "corpus/$t" "$grow" >"$out/$t.merge.log" 2>&1
  after=$(ls "corpus/$t" | wc -l)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$out/$t.log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$out/$t.log" | tail -1 | grep -o '[0-9]*')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$before" "$after" "$rc" \
    | tee -a "$out/summary.tsv"
done
exit $failed

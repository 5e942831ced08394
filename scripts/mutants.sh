#!/bin/sh
# Mutation testing of one source file at the cost docs/MUTANTS.md measures (a few seconds per mutant, not a minute).
#
#   scripts/mutants.sh <src file> <out dir> [cargo-mutants options] -- <test selection>
#   e.g. scripts/mutants.sh src/crypto/packet.rs /tmp/m-packet -- --lib --test packet --test crypto_vectors
#
# Why a tree of its own: the crate's dev-dependencies include test-dc and store-sqlite, which turn on the `api`
# feature (143k generated lines in src/tl/api.rs) and depend on the crate, so every mutant rebuilt the crate twice
# with api, then test-dc, then linked every test. This script copies the working tree (tracked and untracked, not
# ignored, files) to $MUTANTS_TREE, drops those two dev-dependencies and the other workspace members
# from its Cargo.toml (Cargo.lock follows on the first build), and runs cargo-mutants there in place (the copy is
# its scratch tree), with the incremental `mutants` profile and its own target dir that stays warm from one file to the next. The tests selected must not
# use test-dc (tests/hosts*.rs, dc_auth.rs, client_e2e.rs, client_files.rs and the interop_* tests do).
#
# Environment: MUTANTS_TREE (default /tmp/mtproto-mutants-tree), MUTANTS_TARGET (default $MUTANTS_TREE-target).
set -eu
file=$1
out=$2
shift 2
# The test selection must reach cargo in the build phase too (cargo-mutants passes `-- args` only to the test
# phase, so every mutant built every test binary): each word after `--` becomes a --cargo-arg.
args=
sel=
seen=
for a in "$@"; do
    if [ -n "$seen" ]; then sel="$sel $a"; args="$args --cargo-arg=$a"
    elif [ "$a" = "--" ]; then seen=1
    else args="$args $a"; fi
done
root=$(cd "$(dirname "$0")/.." && pwd)
tree=${MUTANTS_TREE:-/tmp/mtproto-mutants-tree}
target=${MUTANTS_TARGET:-$tree-target}

mkdir -p "$tree"
# Only files whose content differs are copied (with a new mtime): an unchanged file stays fresh for the incremental
# build of the previous run, and a file an interrupted run left mutated is rewritten and rebuilt.
(cd "$root" && git ls-files -co --exclude-standard | grep -v -e '^Cargo.toml$' -e '^src/tl/api.rs$') \
    | while read -r f; do
        [ -e "$root/$f" ] || continue
        if ! cmp -s "$root/$f" "$tree/$f"; then mkdir -p "$tree/$(dirname "$f")"; cp "$root/$f" "$tree/$f"; fi
    done
# The `api` feature is off in this tree (nothing turns it on any more): an empty src/tl/api.rs saves cargo-mutants
# parsing 5 MB of generated code on every run.
[ -f "$tree/src/tl/api.rs" ] && [ ! -s "$tree/src/tl/api.rs" ] || : > "$tree/src/tl/api.rs"
sed -e 's/^members = .*/members = ["."]/' \
    -e '/^default-members = /d' \
    -e '/^mtproto-test-dc *=/d' \
    -e '/^mtproto-sansio-sqlite *=/d' \
    "$root/Cargo.toml" > "$tree/Cargo.toml.new"
cmp -s "$tree/Cargo.toml.new" "$tree/Cargo.toml" || mv "$tree/Cargo.toml.new" "$tree/Cargo.toml"
rm -f "$tree/Cargo.toml.new"

rc=0
CARGO_TARGET_DIR=$target cargo mutants -d "$tree" --in-place -f "$file" \
    --profile mutants --features std \
    -o "$out" $args || rc=$?
[ -f "$out/mutants.out/outcomes.json" ] || exit "$rc"

# The per-file record docs/mutants/<file>.txt: counts, the command, then every mutant by outcome.
mo=$out/mutants.out
report=$root/docs/mutants/$(echo "$file" | sed -e 's|^src/||' -e 's|/|_|g' -e 's|\.rs$||').txt
mkdir -p "$(dirname "$report")"
n() { if [ -f "$mo/$1.txt" ]; then awk 'END { print NR }' "$mo/$1.txt"; else echo 0; fi; }
caught=$(n caught) missed=$(n missed) unviable=$(n unviable) timeout=$(n timeout)
viable=$((caught + missed + timeout))
{
    echo "# $file: caught $caught, missed $missed, timeout $timeout, unviable $unviable"
    if [ "$viable" -gt 0 ]; then
        echo "# detected (caught + timeout) of viable: $(( (caught + timeout) * 1000 / viable / 10 )).$(( (caught + timeout) * 1000 / viable % 10 )) %"
    fi
    echo "# regenerate: scripts/mutants.sh $file <out dir> $*"
    echo "# tests:$sel"
    for k in missed timeout caught unviable; do
        echo
        echo "## $k"
        [ -f "$mo/$k.txt" ] && sort -t: -k2,2n "$mo/$k.txt"
    done
} > "$report"
echo "wrote $report"
exit "$rc"

#!/usr/bin/env bash
# Before and after: runs this tree's bench/bench.R on earlier releases
# (default: 0.1.0, commit 54d7504, and 0.2.0, commit d700c5f) and on the
# working tree, back to back on this machine, and prints the lines each run
# measured for the bounds the step's road must keep (one variable of 10, a
# list of 100 x 10, 1e6, 1e7) and the goal tables. Installs what it needs
# (bench/install.sh).
# Usage: bash bench/compare-releases.sh [REV ...] [--quick]
#   RMSPROP_BENCH_LIBS  prefix of the private libraries it installs into
#                       (default /tmp/lib_bench: /tmp/lib_bench_<rev>, _after)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
revs=()
while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do revs+=("$1"); shift; done
[ ${#revs[@]} -gt 0 ] || revs=(54d7504 d700c5f)
prefix="${RMSPROP_BENCH_LIBS:-/tmp/lib_bench}"
work=$(mktemp -d)
bash "$here/bench/install.sh" "${prefix}_after"
for rev in "${revs[@]}"; do
  mkdir -p "${prefix}_$rev" "$work/src_$rev"
  git -C "$here" archive "$rev" | tar -x -C "$work/src_$rev"
  R CMD INSTALL --preclean --no-test-load -l "${prefix}_$rev" "$work/src_$rev" > "$work/$rev.log" 2>&1 ||
    { cat "$work/$rev.log"; exit 1; }
done
cd "$here"
for rev in "${revs[@]}"; do
  echo "== before ($rev) =="
  Rscript bench/bench.R "${prefix}_$rev" "$@" --out "$work/$rev.md" | tee "$work/$rev.txt"
done
echo "== after (working tree) =="
Rscript bench/bench.R "${prefix}_after" "$@" --out "$work/after.md" | tee "$work/after.txt"
echo
echo "== before vs after =="
for f in "${revs[@]}" after; do
  echo "-- $f"
  grep -E "^n = (1e\+01|1e\+06|1e\+07) |^hand .* value .* in place|^(met|NOT met) " "$work/$f.txt" || true
done
echo "tables: $(for f in "${revs[@]}" after; do printf '%s ' "$work/$f.md"; done)"

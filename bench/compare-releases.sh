#!/usr/bin/env bash
# Before and after: runs this tree's bench/bench.R on an earlier release
# (default: 0.1.0, commit 54d7504) and on the working tree, back to back on
# this machine, and prints the lines each run measured for the bounds the
# step's road must keep (one variable of 10, a list of 100 x 10, 1e6, 1e7)
# and both goal tables. Installs what it needs (bench/install.sh).
# Usage: bash bench/compare-releases.sh [REV] [--quick]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
rev="54d7504"
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then rev="$1"; shift; fi
old_lib=/tmp/lib_bench_before
new_lib=/tmp/lib_bench_after
work=$(mktemp -d)
mkdir -p "$old_lib" "$new_lib" "$work/before"
git -C "$here" archive "$rev" | tar -x -C "$work/before"
bash "$here/bench/install.sh" "$new_lib"
R CMD INSTALL --preclean --no-test-load -l "$old_lib" "$work/before" > "$work/before.log" 2>&1 ||
  { cat "$work/before.log"; exit 1; }
cd "$here"
echo "== before ($rev) =="
Rscript bench/bench.R "$old_lib" "$@" --out "$work/before.md" | tee "$work/before.txt"
echo "== after (working tree) =="
Rscript bench/bench.R "$new_lib" "$@" --out "$work/after.md" | tee "$work/after.txt"
echo
echo "== before vs after =="
for f in before after; do
  echo "-- $f"
  grep -E "^n = (1e\+01|1e\+06|1e\+07) |^hand .* value .* in place|^(met|NOT met) " "$work/$f.txt" || true
done
echo "tables: $work/before.md $work/after.md"

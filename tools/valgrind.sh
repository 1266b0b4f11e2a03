#!/bin/sh
# Runs the test suite under valgrind memcheck (issue 7). Usage, from the
# package source directory:
#   tools/valgrind.sh [test-filter]        e.g. tools/valgrind.sh fuzz
# Installs the package (built with -O0 -g for precise reports) into a private
# library, runs tools/run-tests.R under
#   R -d "valgrind --leak-check=full --error-exitcode=1 ..."
# and prints a summary: memcheck errors, definitely lost bytes (R's own
# allocations at exit are "still reachable" / "possibly lost", not ours).
# Exit status 1 when valgrind found an error, a definite leak in the package,
# or a test failed.
set -u
cd "$(dirname "$0")/.." || exit 1
LIB=${RMSPROP_VALGRIND_LIB:-/tmp/rmsprop_valgrind_lib}
LOG=${RMSPROP_VALGRIND_LOG:-/tmp/rmsprop_valgrind}
mkdir -p "$LIB" "$LOG"
MKV="$LOG/Makevars"
printf 'CFLAGS = -O0 -g -fno-omit-frame-pointer\n' > "$MKV"
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
# Build from a copy: instrumented objects must never be left in src/, where a
# later plain install would pick them up.
cp -r . "$SRC/rmsprop" && rm -rf "$SRC"/rmsprop/.git "$SRC"/rmsprop/src/*.o "$SRC"/rmsprop/src/*.so
R_MAKEVARS_USER="$MKV" R CMD INSTALL --no-test-load -l "$LIB" "$SRC/rmsprop" > "$LOG/install.log" 2>&1 ||
  { echo "install failed, see $LOG/install.log"; exit 1; }
FILTER=${1:-}
rm -f "$LOG"/vg.*.log
R_LIBS="$LIB" RMSPROP_FUZZ_SCALE=0.25 R --vanilla -d "valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
  --track-origins=yes --num-callers=30 --log-file=$LOG/vg.%p.log" \
  -f tools/run-tests.R --args $FILTER > "$LOG/tests.log" 2>&1
STATUS=$?
tail -n 1 "$LOG/tests.log"
# The main R process writes the largest log; children (callr) write their own.
ERRS=0; DEF=0
for f in "$LOG"/vg.*.log; do
  e=$(grep -E "ERROR SUMMARY: [0-9]+" "$f" | tail -n 1 | sed -E 's/.*ERROR SUMMARY: ([0-9]+).*/\1/')
  d=$(grep -E "definitely lost: [0-9,]+ bytes" "$f" | tail -n 1 | sed -E 's/.*definitely lost: ([0-9,]+) bytes.*/\1/' | tr -d ,)
  # Definite leaks whose stack involves the package's code.
  ours=$(grep -A30 "definitely lost in loss record" "$f" | grep -c "rmsprop.so" || true)
  echo "$(basename "$f"): errors ${e:-?}, definitely lost ${d:-0} bytes, stacks in rmsprop.so: $ours"
  ERRS=$((ERRS + ${e:-0})); [ "$ours" -gt 0 ] && DEF=$((DEF + 1))
done
echo "valgrind: status $STATUS, memcheck errors $ERRS, logs with package leaks $DEF (logs: $LOG)"
[ "$STATUS" -eq 0 ] && [ "$ERRS" -eq 0 ] && [ "$DEF" -eq 0 ]

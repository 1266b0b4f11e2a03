#!/bin/sh
# Builds the package with AddressSanitizer + UndefinedBehaviorSanitizer into a
# private library and runs the test suite with the ASan runtime preloaded
# (issue 7). Usage, from the package source directory:
#   tools/sanitizers.sh [test-filter]
# R itself is not instrumented and leaks at exit, so leak detection is off;
# every sanitizer report (also from callr child processes, which inherit the
# environment) goes to $LOG/asan.* and $LOG/ubsan.*. Exit status 1 on any
# report or test failure.
set -u
cd "$(dirname "$0")/.." || exit 1
CC_=${CC:-gcc}
LIB=${RMSPROP_SAN_LIB:-/tmp/rmsprop_san_lib}
LOG=${RMSPROP_SAN_LOG:-/tmp/rmsprop_san}
mkdir -p "$LIB" "$LOG"
rm -f "$LOG"/asan.* "$LOG"/ubsan.*
MKV="$LOG/Makevars"
cat > "$MKV" <<MK
CC = $CC_
CFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize=alignment
LDFLAGS = -fsanitize=address,undefined
MK
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
# Build from a copy: instrumented objects must never be left in src/, where a
# later plain install would pick them up.
cp -r . "$SRC/rmsprop" && rm -rf "$SRC"/rmsprop/.git "$SRC"/rmsprop/src/*.o "$SRC"/rmsprop/src/*.so
R_MAKEVARS_USER="$MKV" R CMD INSTALL --no-test-load -l "$LIB" "$SRC/rmsprop" > "$LOG/install.log" 2>&1 ||
  { echo "install failed, see $LOG/install.log"; exit 1; }
ASAN_LIB=$($CC_ -print-file-name=libasan.so)
FILTER=${1:-}
LD_PRELOAD="$ASAN_LIB" \
ASAN_OPTIONS="detect_leaks=0:log_path=$LOG/asan:abort_on_error=0" \
UBSAN_OPTIONS="print_stacktrace=1:log_path=$LOG/ubsan" \
R_LIBS="$LIB" RMSPROP_FUZZ_SCALE=${RMSPROP_FUZZ_SCALE:-1} \
  Rscript --vanilla tools/run-tests.R $FILTER > "$LOG/tests.log" 2>&1
STATUS=$?
tail -n 1 "$LOG/tests.log"
ASAN=$(cat "$LOG"/asan.* 2>/dev/null | grep -c "ERROR: AddressSanitizer" || true)
UBSAN=$(cat "$LOG"/ubsan.* "$LOG"/asan.* "$LOG/tests.log" 2>/dev/null | grep -c "runtime error" || true)
echo "sanitizers: tests status $STATUS, AddressSanitizer reports $ASAN, UBSan runtime errors $UBSAN (logs: $LOG)"
[ "$ASAN" -gt 0 ] && cat "$LOG"/asan.* | head -n 60
[ "$UBSAN" -gt 0 ] && cat "$LOG"/ubsan.* 2>/dev/null | head -n 60
[ "$STATUS" -eq 0 ] && [ "$ASAN" -eq 0 ] && [ "$UBSAN" -eq 0 ]

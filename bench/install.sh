#!/usr/bin/env bash
# Installs the working tree into a private library from a clean copy (no stale
# objects from in-tree builds). Usage: bench/install.sh [lib] [extra R CMD INSTALL args]
# RMSPROP_NO_OPENMP=1 builds without OpenMP (SHLIB_OPENMP_CFLAGS emptied).
# RMSPROP_PATCH_FINITE=1 applies the proposed step.c change (the finiteness
# scan through kernel_first_nonfinite()) to the copy, to measure it.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
lib="${1:-/tmp/lib_speed}"; shift || true
tmp=$(mktemp -d)
mkdir -p "$lib"
cp -r "$src" "$tmp/rmsprop"
rm -f "$tmp"/rmsprop/src/*.o "$tmp"/rmsprop/src/*.so
if [ "${RMSPROP_NO_OPENMP:-0}" = 1 ]; then
  sed -i 's/\$(SHLIB_OPENMP_CFLAGS)//g' "$tmp/rmsprop/src/Makevars"
fi
if [ "${RMSPROP_PATCH_FINITE:-0}" = 1 ]; then
  perl -0pi -e 's/(static R_xlen_t first_nonfinite\(const double \*x, R_xlen_t n\) \{\n).*?\n\}\n/$1  return kernel_first_nonfinite(n, x);\n}\n/s' "$tmp/rmsprop/src/step.c"
  grep -A2 "^static R_xlen_t first_nonfinite" "$tmp/rmsprop/src/step.c"
fi
R CMD INSTALL --no-test-load -l "$lib" "$@" "$tmp/rmsprop" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; exit 1; }
grep -E "warning:|error:" "$tmp/install.log" || true
rm -rf "$tmp"
echo "installed into $lib"

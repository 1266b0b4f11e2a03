#!/usr/bin/env bash
# Installs the working tree into a private library from a clean copy (no stale
# objects from in-tree builds). Usage: bench/install.sh [lib] [extra R CMD INSTALL args]
# RMSPROP_NO_OPENMP=1 builds without OpenMP (SHLIB_OPENMP_CFLAGS emptied).
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
R CMD INSTALL --no-test-load -l "$lib" "$@" "$tmp/rmsprop" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; exit 1; }
grep -E "warning:|error:" "$tmp/install.log" || true
rm -rf "$tmp"
echo "installed into $lib"

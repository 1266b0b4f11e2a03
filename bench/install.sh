#!/usr/bin/env bash
# Installs what the benchmarks need, then the working tree into a private
# library from a clean copy (no stale objects from in-tree builds).
#
# Usage: bench/install.sh [--deps-only] [lib] [extra R CMD INSTALL args]
#   lib          default /tmp/lib_speed (where bench/*.R look for rmsprop)
#   --deps-only  only the dependencies below (bench/bench.R runs this when
#                the R package bench is missing)
#
# Dependencies, each checked first and installed only when missing:
#   - the R package bench (bench/bench.R times with bench::hires_time()):
#     required. Debian's r-cran-bench with apt-get when running as root where
#     apt-get exists, else install.packages() from the CRAN mirror set in R
#     (getOption("repos")) into lib. The script fails if neither works.
#   - PyTorch, for the PyTorch column of bench/bench.R: optional. Debian's
#     python3-torch (for /usr/bin/python3, the interpreter bench.R uses) with
#     apt-get as root; otherwise the script says it is skipped and bench.R
#     quotes a published figure instead. RMSPROP_BENCH_TORCH=0 skips it.
#   - the R package future (the multisession part of
#     bench/bench-data-parallel.R): optional, as bench; skipped there without it.
# RMSPROP_NO_OPENMP=1 builds without OpenMP (SHLIB_OPENMP_CFLAGS emptied).
set -euo pipefail
deps_only=0
if [ "${1:-}" = "--deps-only" ]; then deps_only=1; shift; fi
src="$(cd "$(dirname "$0")/.." && pwd)"
lib="${1:-/tmp/lib_speed}"; shift || true
mkdir -p "$lib"
lib="$(cd "$lib" && pwd)"

# ---- apt-get (root only) ------------------------------------------------------
can_apt=0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then can_apt=1; fi
apt_updated=0
apt_log=$(mktemp)
# (grep reads all of its input: with -q it could stop early and, under
# pipefail, apt-cache's SIGPIPE would count as "no candidate")
apt_candidate() { apt-cache policy "$1" 2>/dev/null | grep -E 'Candidate: [^(]' >/dev/null; }
# Installs Debian packages; status 1 when apt-get cannot be used, does not
# have them, or fails (then it says why). The package lists are refreshed
# once, when a package is unknown; a dpkg lock held by another apt-get is
# waited for (up to 5 minutes).
apt_install() {
  [ "$can_apt" = 1 ] || return 1
  local p
  for p in "$@"; do
    if ! apt_candidate "$p" && [ "$apt_updated" = 0 ]; then
      apt-get update -qq >/dev/null 2>&1 || true
      apt_updated=1
    fi
    apt_candidate "$p" || return 1
  done
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o DPkg::Lock::Timeout=300 "$@" >"$apt_log" 2>&1; then
    echo "apt-get install $* failed:" >&2
    tail -n 5 "$apt_log" >&2
    return 1
  fi
}

# ---- R packages ----------------------------------------------------------------
r_has() {
  Rscript -e ".libPaths(c('$lib', .libPaths()))" \
    -e "if (!requireNamespace('$1', quietly = TRUE)) quit(status = 1)" >/dev/null 2>&1
}
cran_install() {
  Rscript -e "repos <- getOption('repos')" \
    -e "if (!length(repos) || any(repos == '@CRAN@')) stop('no CRAN mirror is set in options(repos)')" \
    -e "install.packages('$1', lib = '$lib', repos = repos, quiet = TRUE)"
}
# ensure_r_pkg NAME required|optional WHAT-FOR
ensure_r_pkg() {
  local pkg=$1 need=$2 why=$3
  if r_has "$pkg"; then echo "R package $pkg: found"; return 0; fi
  if apt_install "r-cran-$pkg" && r_has "$pkg"; then
    echo "R package $pkg: installed (Debian r-cran-$pkg)"; return 0
  fi
  echo "R package $pkg: installing from CRAN into $lib"
  cran_install "$pkg" || true
  if r_has "$pkg"; then echo "R package $pkg: installed into $lib"; return 0; fi
  if [ "$need" = required ]; then
    echo "error: could not install the R package $pkg, which $why needs" >&2
    exit 1
  fi
  echo "R package $pkg: skipped (could not be installed); $why runs without it"
}

# ---- PyTorch (optional) ------------------------------------------------------------
python=/usr/bin/python3
[ -x "$python" ] || python="$(command -v python3 || true)"
torch_version() { [ -n "$python" ] && "$python" -c 'import torch; print(torch.__version__)' 2>/dev/null; }
ensure_torch() {
  local skipped="bench/bench.R quotes a published figure for its PyTorch column instead"
  if [ "${RMSPROP_BENCH_TORCH:-1}" = 0 ]; then
    echo "PyTorch: skipped (RMSPROP_BENCH_TORCH=0); $skipped"; return 0
  fi
  local v
  if v=$(torch_version); then echo "PyTorch: found ($v, $python)"; return 0; fi
  if [ "$python" = /usr/bin/python3 ] && apt_install python3-torch && v=$(torch_version); then
    echo "PyTorch: installed (Debian python3-torch $v)"; return 0
  fi
  if [ "$can_apt" = 1 ]; then
    echo "PyTorch: skipped (Debian's python3-torch could not be installed for $python); $skipped"
  else
    echo "PyTorch: skipped (python3-torch needs root and apt-get); $skipped"
  fi
}

trap 'rm -f "$apt_log"' EXIT
ensure_r_pkg bench required "bench/bench.R"
ensure_r_pkg future optional "bench/bench-data-parallel.R (multisession part)"
ensure_torch
[ "$deps_only" = 1 ] && exit 0

# ---- the package -----------------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$apt_log"' EXIT
cp -r "$src" "$tmp/rmsprop"
rm -f "$tmp"/rmsprop/src/*.o "$tmp"/rmsprop/src/*.so
if [ "${RMSPROP_NO_OPENMP:-0}" = 1 ]; then
  sed -i 's/\$(SHLIB_OPENMP_CFLAGS)//g' "$tmp/rmsprop/src/Makevars"
fi
R CMD INSTALL --no-test-load -l "$lib" "$@" "$tmp/rmsprop" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; exit 1; }
grep -E "warning:|error:" "$tmp/install.log" || true
echo "installed into $lib"

#!/usr/bin/env bash
# Installs what the tests, the vignette and the engines need, each only when
# missing, so a rerun on the same machine finds what an earlier run built
# (RTMB takes about 11 minutes to compile; it is built once per machine).
#
#   - Debian's built R packages (testthat, future, globals, knitr, ...) and the
#     tools R CMD check and the vignette use (pandoc, tidy, qpdf), with apt-get;
#   - from CRAN, built from source into R's first library: TMB (RTMB needs a
#     newer one than Debian's), RTMB (the "ad" gradient source) and mirai (the
#     mirai engine). On R older than 4.3, RTMB compiles only as C++17, which
#     this script asks for through a user Makevars (R_MAKEVARS_USER).
#
# Usage: bash tools/install-deps.sh   (as root where apt-get is used)
# Prints one line per dependency; exits non-zero when a required one failed.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0

r_has() { Rscript -e "quit(status = !requireNamespace('$1', quietly = TRUE))" >/dev/null 2>&1; }
r_version_ok() { # r_version_ok PKG MIN
  Rscript -e "quit(status = !(requireNamespace('$1', quietly = TRUE) && packageVersion('$1') >= '$2'))" >/dev/null 2>&1
}

# ---- Debian packages ------------------------------------------------------------
missing=""
for p in testthat future future.apply callr withr knitr rmarkdown globals rcpp rcppeigen matrix; do
  rp=$p; case $p in rcpp) rp=Rcpp;; rcppeigen) rp=RcppEigen;; matrix) rp=Matrix;; esac
  r_has "$rp" || missing="$missing r-cran-$p"
done
for t in tidy pandoc qpdf; do command -v $t >/dev/null || missing="$missing $t"; done
if [ -n "$missing" ]; then
  echo "apt-get install:$missing"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
       -o DPkg::Lock::Timeout=300 $missing) >"$log" 2>&1 || { echo "apt-get failed:"; tail -20 "$log"; }
  else
    echo "not root or no apt-get: install these yourself:$missing"
  fi
fi

# ---- CRAN packages, built from source --------------------------------------------
cran() { # cran PKG: install.packages() with R's C++17 setting where R < 4.3
  local mk
  mk=$(mktemp)
  Rscript -e "if (getRversion() < '4.3.0') writeLines('CXX = g++ -std=gnu++17', '$mk')"
  R_MAKEVARS_USER="$mk" MAKEFLAGS="-j$(nproc)" Rscript -e "
    repos <- getOption('repos'); if (!length(repos) || any(repos == '@CRAN@')) repos <- 'https://cloud.r-project.org'
    install.packages('$1', repos = repos, Ncpus = 2L, quiet = TRUE)" >"$log" 2>&1
  local s=$?
  rm -f "$mk"
  [ $s -eq 0 ] || tail -20 "$log"
}
ensure_cran() { # ensure_cran PKG MIN-VERSION
  if r_version_ok "$1" "$2"; then echo "R package $1: found"; return 0; fi
  echo "R package $1: installing from CRAN (source build)"
  local t0=$SECONDS
  cran "$1"
  if r_version_ok "$1" "$2"; then echo "R package $1: installed in $((SECONDS - t0)) s"
  else echo "R package $1: FAILED to install"; failed=1; fi
}
ensure_cran TMB 1.9.7
ensure_cran RTMB 1.0
ensure_cran mirai 2.0
exit $failed

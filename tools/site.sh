#!/usr/bin/env bash
# Builds the documentation site (pkgdown: the help pages, README.md and the
# vignette) and checks it in a real headless browser.
#
#   tools/site.sh [output dir]        (default: _site/ here, which git ignores)
#
# Writes <output dir>/site (the site: open site/index.html), screenshots/
# (a full-page PNG of each checked page), build.log and check.log. Ends with
# "site: PASS" or "site: FAIL" and exits 0 or 1.
#
# 1. Installs what is missing: pkgdown, knitr, rmarkdown, callr, pandoc,
#    chromium, node and npm from Debian; from npm, into a cache outside the
#    repository ($RMSPROP_SITE_CACHE, default ~/.cache/rmsprop-site),
#    playwright-core (to drive chromium) and the scripts and icon fonts that
#    pkgdown's template would otherwise load from CDNs (tools/site/build.R).
# 2. Builds the site from a copy of the package's files (nothing is written
#    into the working tree), with no network: when it can (root, unshare, ip)
#    it runs the build and the checks in a network namespace that has only
#    the loopback device.
# 3. Checks the home page, the reference index, optimizer_rmsprop's page, a
#    page with an example figure and the vignette in chromium: no console
#    errors, no failed or outside requests, every image loaded, the expected
#    text there, the search box answers; and every relative link of the site
#    resolves (tools/site/check.cjs).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/_site}
cache=${RMSPROP_SITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rmsprop-site}
mkdir -p "$out" "$cache" || exit 1
out=$(cd "$out" && pwd)
start=$(date +%s)

fail() { echo "site: FAIL ($*)"; exit 1; }

# --- 1. What the build and the checks need -----------------------------------
missing=""
for p in pkgdown knitr rmarkdown callr; do
  Rscript -e "quit(status = !requireNamespace('$p', quietly = TRUE))" 2>/dev/null || missing="$missing r-cran-$p"
done
command -v pandoc >/dev/null || missing="$missing pandoc"
command -v chromium >/dev/null || missing="$missing chromium"
command -v node >/dev/null || missing="$missing nodejs"
command -v npm >/dev/null || missing="$missing npm"
if [ -n "$missing" ]; then
  echo "installing from Debian:$missing"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) \
    >"$out/apt.log" 2>&1 || { tail -20 "$out/apt.log"; fail "apt-get install failed"; }
fi

# playwright-core 1.65 needs node 20; 1.49 is the last for node 18 (Debian 12's).
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -ge 20 ]; then playwright=playwright-core@1.65.1; else playwright=playwright-core@1.49.1; fi
# The versions pkgdown 2.0.7's template names (build.R checks they match).
specs="$playwright headroom.js@0.11.0 clipboard@2.0.6 fuse.js@6.4.6 autocomplete.js@0.38.0 mark.js@8.11.1 @fortawesome/fontawesome-free@5.12.1"
if [ "$(cat "$cache/installed.txt" 2>/dev/null)" != "$specs" ]; then
  echo "installing from npm into $cache: $specs"
  (cd "$cache" && npm install --prefix "$cache" --no-audit --no-fund --loglevel=error $specs) \
    >"$out/npm.log" 2>&1 || { tail -20 "$out/npm.log"; fail "npm install failed"; }
  echo "$specs" >"$cache/installed.txt"
fi

# --- 2. Build, offline ---------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/rmsprop"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # the files git tracks or would track (so the working tree's edits, not build output)
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
     tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$work/rmsprop"
else
  (cd "$repo" && tar --exclude=./_site --exclude='*.Rcheck' -cf - .) | tar -xf - -C "$work/rmsprop"
fi
[ -f "$work/rmsprop/DESCRIPTION" ] || fail "could not copy the package"

offline() { "$@"; }
network="network not isolated (needs root, unshare and ip)"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null &&
   unshare -n sh -c 'ip link set lo up' 2>/dev/null; then
  offline() { unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"; }
  network="offline: loopback only"
fi

echo "building the site into $out/site ($network)"
rm -rf "$out/screenshots"
if offline nice Rscript "$work/rmsprop/tools/site/build.R" "$work/rmsprop" "$out/site" "$cache/node_modules" \
     >"$out/build.log" 2>&1; then
  build_ok=1
  echo "PASS  build: $(grep -c '^Writing' "$out/build.log") pages and files written (log: $out/build.log)"
  grep '^index: ' "$out/build.log" | sed 's/^index: /NOTE  help topics /'
else
  build_ok=0
  tail -30 "$out/build.log"
  echo "FAIL  build (log: $out/build.log)"
fi

# --- 3. Check in the browser -------------------------------------------------------
if [ $build_ok = 1 ]; then
  offline node "$repo/tools/site/check.cjs" "$out/site" "$cache/node_modules" "$out/screenshots" 2>&1 |
    tee "$out/check.log"
  check_status=${PIPESTATUS[0]}
else
  check_status=1
fi

echo "($(( $(date +%s) - start )) s, $network)"
if [ $build_ok = 1 ] && [ "$check_status" = 0 ]; then
  echo "site: PASS  open $out/site/index.html; screenshots in $out/screenshots"
  exit 0
fi
echo "site: FAIL"
exit 1

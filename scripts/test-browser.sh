#!/usr/bin/env bash
# Browser tests (tests/browser): a real headless Chromium, driven by playwright-core, against a
# real `r2-broker dev`, from pages on another origin (so CORS and preflights happen as in
# production):
#
#   bash scripts/test-browser.sh                    # every tests/browser/*.test.js
#   bash scripts/test-browser.sh demo.test.js       # only these files (paths in tests/browser)
#
# scripts/test.sh calls it after the JS client's tests (R2B_SKIP_BROWSER=1 skips it there). It
# installs Debian's chromium when /usr/bin/chromium is missing (apt-get, as root only), runs
# `npm ci` in tests/browser when its lock file changed (playwright-core, which downloads no
# browser, uppy 5, @uppy/core + @uppy/aws-s3 6 and esbuild, which the Uppy 6 test bundles
# them with in memory), starts target/debug/r2-broker (`cargo build --locked` only when it is
# missing) as `r2-broker dev` on free ports with tests/browser/profiles.toml
# (scripts/lib/dev-broker.sh), runs `node --test`, then stops the service and its private
# PostgreSQL, also on failure or Ctrl-C. Screenshots land in target/browser-artifacts/.
#
# Knobs: R2B_CHROMIUM (another Chromium binary; no install then), R2B_KEEP_TEST_DIRS=1 keeps
# the temp dir (data, dev.log), R2B_BROWSER_TIMEOUT (seconds to wait for the service, 60).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$(realpath -m "${CARGO_TARGET_DIR:-target}/debug/r2-broker")
DIR=$ROOT/tests/browser
CHROMIUM=${R2B_CHROMIUM:-/usr/bin/chromium}
TIMEOUT=${R2B_BROWSER_TIMEOUT:-60}
T0=$SECONDS

log() { printf '[test-browser] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/dev-broker.sh
source "$ROOT/scripts/lib/dev-broker.sh"
dev_broker_require node npm curl

# 1. Chromium: Debian's package (playwright-core drives it; it never downloads a browser).
if [[ ! -x "$CHROMIUM" ]]; then
    [[ -z "${R2B_CHROMIUM:-}" ]] || die "R2B_CHROMIUM=$CHROMIUM is not an executable"
    [[ $(id -u) -eq 0 ]] || die "no $CHROMIUM, and installing it needs root: run \`sudo apt-get install -y chromium\` (Debian) or set R2B_CHROMIUM to a Chromium binary"
    command -v apt-get >/dev/null 2>&1 || die "no $CHROMIUM and no apt-get to install it: set R2B_CHROMIUM to a Chromium binary"
    t=$SECONDS
    log "no $CHROMIUM: apt-get update && apt-get install -y chromium"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    [[ -x "$CHROMIUM" ]] || die "apt-get installed chromium, but there is no $CHROMIUM"
    log "chromium installed in $((SECONDS - t)) s"
fi
log "$("$CHROMIUM" --version 2>/dev/null | head -n 1)"

dev_broker_setup r2b-browser

# 2. The test dependencies, then the service. `npm ci` empties node_modules first, which would
#    break another run of this script in the same checkout: so only when package-lock.json
#    changed since the last one (a stamp in node_modules), under a lock.
cd "$DIR"
want=$(sha256sum package-lock.json | cut -d ' ' -f 1)
(
    flock 9
    if [[ "$(cat node_modules/.r2b-package-lock.sha256 2>/dev/null)" == "$want" ]]; then
        log "node_modules matches package-lock.json: no npm ci"
    else
        log "npm ci"
        npm ci --no-audit --no-fund --loglevel=error >&2
        echo "$want" >node_modules/.r2b-package-lock.sha256
    fi
) 9>"${TMPDIR:-/tmp}/r2b-browser-npm-$(printf '%s' "$DIR" | sha256sum | cut -c 1-12).lock"
dev_broker_start "$BIN" "$DIR/profiles.toml" "$TIMEOUT"

# 3. The tests, two files at once (one Chromium each). The R2B_JS_* names are those of
#    clients/js/test/support/broker.js, whose helpers the harness reuses.
tests=("$@")
[[ ${#tests[@]} -gt 0 ]] || tests=(*.test.js)
log "node --test ${tests[*]}"
R2B_JS_API=$DEV_API R2B_JS_STORE=$DEV_STORE R2B_JS_BIN=$BIN R2B_JS_DATA_DIR=$DEV_TMP/data \
    R2B_CHROMIUM=$CHROMIUM R2B_BROWSER_ARTIFACTS=$ROOT/target/browser-artifacts \
    node --test --test-concurrency=2 --test-timeout=120000 "${tests[@]}" &
DEV_RUNNER_PID=$!
wait "$DEV_RUNNER_PID"

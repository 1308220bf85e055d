#!/usr/bin/env bash
# The JS client's tests (clients/js), against a real `r2-broker dev` (no mocks):
#
#   bash scripts/test-js.sh                 # type-check r2-broker.d.ts, then node --test
#   bash scripts/test-js.sh test/put.test.js   # only these test files (paths in clients/js)
#
# scripts/test.sh calls it after the cargo tests (R2B_SKIP_JS=1 skips it there). It builds
# nothing itself: it runs target/debug/r2-broker (built by those tests; `cargo build
# --locked` only when it is missing) as `r2-broker dev` on free ports with a throwaway data
# dir and the test profiles (clients/js/test/profiles.toml), waits for /readyz, runs
# `npm ci` (devDependencies only: typescript), `tsc` and `node --test`, then stops the
# service and its private PostgreSQL, also on failure or Ctrl-C.
#
# Knobs: R2B_KEEP_TEST_DIRS=1 keeps the temp dir (data, dev.log); R2B_JS_TIMEOUT (seconds to
# wait for the service, default 60).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$(cd "$ROOT" && realpath -m "${CARGO_TARGET_DIR:-target}/debug/r2-broker")
JS=$ROOT/clients/js
TIMEOUT=${R2B_JS_TIMEOUT:-60}
T0=$SECONDS

log() { printf '[test-js] %s\n' "$*" >&2; }
# shellcheck source=scripts/lib/dev-broker.sh
source "$ROOT/scripts/lib/dev-broker.sh"
dev_broker_require node npm curl
dev_broker_setup r2b-js

# 1. The service (scripts/lib/dev-broker.sh): port 0 for both servers, the test profiles.
dev_broker_start "$BIN" "$JS/test/profiles.toml" "$TIMEOUT"

# 2. The client's dev dependencies, its types, its tests.
cd "$JS"
log "npm ci"
npm ci --no-audit --no-fund --loglevel=error >&2
log "tsc -p tsconfig.json (r2-broker.d.ts against test/types.ts)"
npx --no-install tsc -p tsconfig.json
tests=("$@")
[[ ${#tests[@]} -gt 0 ]] || tests=(test/*.test.js)
log "node --test ${tests[*]}"
# In the background, so that a signal reaches the trap at once (bash defers traps while a
# foreground child runs) and the cleanup stops it.
R2B_JS_API=$DEV_API R2B_JS_STORE=$DEV_STORE R2B_JS_BIN=$BIN R2B_JS_DATA_DIR=$DEV_TMP/data \
    node --test --test-concurrency=3 "${tests[@]}" &
DEV_RUNNER_PID=$!
wait "$DEV_RUNNER_PID"

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
die() {
    log "error: $*"
    exit 1
}

command -v node >/dev/null 2>&1 || die "node not found (Node.js 18+ is needed for the JS tests)"
command -v npm >/dev/null 2>&1 || die "npm not found"
command -v curl >/dev/null 2>&1 || die "curl not found"

if [[ ! -x "$BIN" ]]; then
    log "no $BIN: cargo build --locked"
    cargo build --locked
fi

# mode 0755: as root the private PostgreSQL runs as `postgres`, which must reach its folder
# in here (else r2-broker dev puts it under /var/tmp, outside what we delete).
TMP=$(mktemp -d "${TMPDIR:-/tmp}/r2b-js.XXXXXX")
chmod 755 "$TMP"
DEV_PID=""
NODE_PID=""

# shellcheck disable=SC2317 # trap handler
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$NODE_PID" ]] && kill -0 "$NODE_PID" 2>/dev/null; then
        kill -TERM "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -f "$TMP/dev.log" ]]; then
        log "---- last warnings and errors of r2-broker dev ($TMP/dev.log; R2B_KEEP_TEST_DIRS=1 keeps it) ----"
        grep -E ' (WARN|ERROR) ' "$TMP/dev.log" | tail -n 30 | sed 's/^/    /' >&2 || true
    fi
    if [[ -n "$DEV_PID" ]] && kill -0 "$DEV_PID" 2>/dev/null; then
        kill -TERM "$DEV_PID" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$DEV_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$DEV_PID" 2>/dev/null; then
            log "r2-broker dev did not stop within 15 s: killing it and its PostgreSQL"
            kill -KILL "$DEV_PID" 2>/dev/null || true
            local pm=$TMP/data/postgres/data/postmaster.pid
            [[ -f "$pm" ]] && kill -KILL "$(head -n 1 "$pm")" 2>/dev/null || true
        fi
        wait "$DEV_PID" 2>/dev/null || true
    fi
    if [[ "${R2B_KEEP_TEST_DIRS:-0}" == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    log "done in $((SECONDS - T0)) s (exit $rc)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The service: only our settings (a caller's DATABASE_URL, JWT_*, rate limits… would
#    change what the tests see), port 0 for both servers, the test profiles.
unset_vars=()
while IFS= read -r v; do unset_vars+=("-u" "$v"); done < <(compgen -e | grep -E '^(DATABASE_URL$|BROKER_|S3_|JWT_)' || true)
log "starting r2-broker dev (data in $TMP/data)"
env "${unset_vars[@]}" BROKER_LISTEN=127.0.0.1:0 BROKER_PROFILES="$JS/test/profiles.toml" \
    BROKER_REAPER_INTERVAL=0 RUST_LOG="${RUST_LOG:-info}" \
    "$BIN" dev --data-dir "$TMP/data" --s3-port 0 >"$TMP/dev.log" 2>&1 &
DEV_PID=$!

API="" STORE=""
for _ in $(seq 1 $((TIMEOUT * 10))); do
    kill -0 "$DEV_PID" 2>/dev/null || die "r2-broker dev exited early"
    API=$(sed -n 's/^  API  *\(http:[^ ]*\).*/\1/p' "$TMP/dev.log" | head -n 1)
    STORE=$(sed -n 's/^  S3 store  *\(http:[^ ]*\).*/\1/p' "$TMP/dev.log" | head -n 1)
    [[ -n "$API" && -n "$STORE" ]] && curl -sf -m 2 "$API/readyz" >/dev/null && break
    API=""
    sleep 0.1
done
[[ -n "$API" ]] || die "r2-broker dev was not ready within $TIMEOUT s"
log "broker $API, store $STORE (ready after $((SECONDS - T0)) s)"

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
R2B_JS_API=$API R2B_JS_STORE=$STORE R2B_JS_BIN=$BIN R2B_JS_DATA_DIR=$TMP/data \
    node --test --test-concurrency=3 "${tests[@]}" &
NODE_PID=$!
wait "$NODE_PID"

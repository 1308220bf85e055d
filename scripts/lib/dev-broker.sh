# shellcheck shell=bash
# `r2-broker dev` for the test scripts that need a real broker (scripts/test-js.sh,
# scripts/test-browser.sh, scripts/schemathesis.sh). Source it after defining log() and
# setting T0=$SECONDS:
#
#   dev_broker_require node npm curl              # or die() naming the missing command
#   dev_broker_setup r2b-js                       # DEV_TMP, a temp dir; traps that clean up
#   dev_broker_start "$BIN" profiles.toml 60 [VAR=value…]   # sets DEV_PID, DEV_API, DEV_STORE
#   dev_broker_token OWNER [--admin]              # prints a token the running service accepts
#   node --test … & DEV_RUNNER_PID=$!; wait "$DEV_RUNNER_PID"
#
# The runner goes in the background so that a signal reaches the trap at once (bash defers
# traps while a foreground child runs). On exit the runner and the service (and its private
# PostgreSQL) are stopped, also on failure or Ctrl-C, and DEV_TMP is removed unless
# R2B_KEEP_TEST_DIRS=1. The service gets only our settings (a caller's DATABASE_URL, JWT_*,
# rate limits… would change what the tests see): port 0 for the broker and the store (the
# ports are read from the banner), the given profiles file, no background reaper, then the
# extra VAR=value. Data in $DEV_TMP/data, log in $DEV_TMP/dev.log.

DEV_PID=""
DEV_API=""
DEV_STORE=""
DEV_TMP=""
DEV_RUNNER_PID=""
DEV_BIN=""
DEV_UNSET=()

die() {
    log "error: $*"
    exit 1
}

dev_broker_require() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || die "$c not found (Node.js and npm are needed for these tests)"
    done
}

# A temp dir of mode 0755 (as root the private PostgreSQL runs as `postgres`, which must reach
# its folder in here, else r2-broker dev puts it under /var/tmp, outside what we delete), and
# the traps.
dev_broker_setup() {
    DEV_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    chmod 755 "$DEV_TMP"
    trap dev_broker_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Builds the binary when it is missing, starts it, waits for the banner and /readyz.
dev_broker_start() {
    local bin=$1 profiles=$2 timeout=$3
    shift 3
    if [[ ! -x "$bin" ]]; then
        log "no $bin: cargo build --locked"
        cargo build --locked
    fi
    DEV_BIN=$bin
    dev_broker_unset_env
    log "starting r2-broker dev (data in $DEV_TMP/data)"
    env "${DEV_UNSET[@]}" BROKER_LISTEN=127.0.0.1:0 BROKER_PROFILES="$profiles" \
        BROKER_REAPER_INTERVAL=0 RUST_LOG="${RUST_LOG:-info}" "$@" \
        "$bin" dev --data-dir "$DEV_TMP/data" --s3-port 0 >"$DEV_TMP/dev.log" 2>&1 &
    DEV_PID=$!

    DEV_API="" DEV_STORE=""
    for _ in $(seq 1 $((timeout * 10))); do
        kill -0 "$DEV_PID" 2>/dev/null || die "r2-broker dev exited early (log: $DEV_TMP/dev.log)"
        DEV_API=$(sed -n 's/^  API  *\(http:[^ ]*\).*/\1/p' "$DEV_TMP/dev.log" | head -n 1)
        DEV_STORE=$(sed -n 's/^  S3 store  *\(http:[^ ]*\).*/\1/p' "$DEV_TMP/dev.log" | head -n 1)
        [[ -n "$DEV_API" && -n "$DEV_STORE" ]] && curl -sf -m 2 "$DEV_API/readyz" >/dev/null && break
        DEV_API=""
        sleep 0.1
    done
    [[ -n "$DEV_API" ]] || die "r2-broker dev was not ready within $timeout s"
    log "broker $DEV_API, store $DEV_STORE (ready after $((SECONDS - T0)) s)"
}

# `env` arguments that drop the caller's DATABASE_URL, BROKER_*, S3_* and JWT_* settings.
# (An array, not a wrapper function: `wrapper … &` would make $! the subshell's PID, and
# the service would outlive the kill meant for it.)
dev_broker_unset_env() {
    DEV_UNSET=()
    while IFS= read -r v; do DEV_UNSET+=("-u" "$v"); done < <(compgen -e | grep -E '^(DATABASE_URL$|BROKER_|S3_|JWT_)' || true)
}

# A token for OWNER signed with the running service's dev secret.
dev_broker_token() {
    env "${DEV_UNSET[@]}" "$DEV_BIN" dev --data-dir "$DEV_TMP/data" token --owner "$@"
}

# shellcheck disable=SC2317,SC2329 # the EXIT trap
dev_broker_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$DEV_RUNNER_PID" ]] && kill -0 "$DEV_RUNNER_PID" 2>/dev/null; then
        kill -TERM "$DEV_RUNNER_PID" 2>/dev/null || true
        wait "$DEV_RUNNER_PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -f "$DEV_TMP/dev.log" ]]; then
        log "---- last warnings and errors of r2-broker dev ($DEV_TMP/dev.log; R2B_KEEP_TEST_DIRS=1 keeps it) ----"
        grep -E ' (WARN|ERROR) ' "$DEV_TMP/dev.log" | tail -n 30 | sed 's/^/    /' >&2 || true
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
            local pm=$DEV_TMP/data/postgres/data/postmaster.pid
            if [[ -f "$pm" ]]; then kill -KILL "$(head -n 1 "$pm")" 2>/dev/null || true; fi
        fi
        wait "$DEV_PID" 2>/dev/null || true
    fi
    if [[ -z "$DEV_TMP" ]]; then
        :
    elif [[ "${R2B_KEEP_TEST_DIRS:-0}" == 1 ]]; then
        log "kept $DEV_TMP"
    else
        rm -rf "$DEV_TMP"
    fi
    log "done in $((SECONDS - T0)) s (exit $rc)"
    exit "$rc"
}

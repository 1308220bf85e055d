#!/usr/bin/env bash
# r2-broker's test command (CI runs it through .ci/run):
#
#   bash scripts/test.sh                      # fmt, clippy, then every test
#   bash scripts/test.sh -E 'test(quota)'     # extra args go to `cargo nextest run`
#   R2B_SKIP_LINT=1 bash scripts/test.sh      # skip fmt and clippy
#   R2B_SKIP_SCHEMATHESIS=1 bash scripts/test.sh   # skip the schemathesis step
#   R2B_SKIP_BROWSER=1 bash scripts/test.sh   # skip the Chromium tests (scripts/test-browser.sh)
#
# It starts a private throwaway PostgreSQL cluster (unless DATABASE_URL is set: then that
# server is used, and its user must be able to CREATE DATABASE) and an s3s-fs server that
# checks SigV4 signatures, exports where they are, runs the tests and stops everything.
#
# Exported to the tests:
#   R2B_TEST_DATABASE_URL   admin URL (private cluster: postgres://postgres@127.0.0.1:PORT/postgres)
#   R2B_TEST_S3_ENDPOINT    http://127.0.0.1:PORT
#   R2B_TEST_S3_ACCESS_KEY, R2B_TEST_S3_SECRET_KEY
#   R2B_TEST_S3_DATA_DIR    s3s-fs root folder (a bucket is a folder in it)
#
# After the tests, scripts/schemathesis.sh runs schemathesis against the built binary
# (`r2-broker dev`: its own store and PostgreSQL), with a user and an admin token; it is
# skipped when arguments are passed to nextest (a filtered run) or with
# R2B_SKIP_SCHEMATHESIS=1, and forced with R2B_SCHEMATHESIS=1.
#
# Other knobs: R2B_KEEP_TEST_DIRS=1 keeps the temp dir (data, service logs);
# R2B_SERVICES_ONLY=1 starts the services, smoke-checks them and stops (no cargo).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh

# shellcheck disable=SC2317 # trap handlers
on_signal() {
    local name=$1 code=$2
    trap - INT TERM
    svc_log "caught SIG$name; stopping"
    exit "$code"
}

# shellcheck disable=SC2317
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    svc_cleanup
    exit "$rc"
}

trap on_exit EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

step() { svc_log "$*"; }

# Make sure fmt/clippy exist on a fresh rustup toolchain.
ensure_components() {
    local missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if [[ ${#missing[@]} -gt 0 ]]; then
        command -v rustup >/dev/null 2>&1 || svc_die "missing ${missing[*]} and no rustup to add them"
        step "rustup component add ${missing[*]}"
        svc_run_child rustup component add "${missing[@]}"
    fi
}

svc_ensure_cargo_path
if [[ "${R2B_SERVICES_ONLY:-0}" != 1 ]]; then
    command -v cargo >/dev/null 2>&1 || svc_die "cargo not found (install Rust with rustup)"
fi

# 1. Lint first: it needs no services and fails fast.
if [[ "${R2B_SKIP_LINT:-0}" != 1 && "${R2B_SERVICES_ONLY:-0}" != 1 ]]; then
    ensure_components
    step "cargo fmt --all -- --check"
    svc_run_child cargo fmt --all -- --check
    step "cargo clippy --all-targets --locked -- -D warnings"
    svc_run_child cargo clippy --all-targets --locked -- -D warnings
fi

# 2. Tools and services.
svc_init
svc_ensure_tools
svc_start_postgres
svc_start_s3
svc_start_watchdog
svc_summary

if [[ "${R2B_SERVICES_ONLY:-0}" == 1 ]]; then
    for v in R2B_TEST_DATABASE_URL R2B_TEST_S3_ENDPOINT R2B_TEST_S3_ACCESS_KEY \
        R2B_TEST_S3_SECRET_KEY R2B_TEST_S3_DATA_DIR; do
        printf '%s=%s\n' "$v" "${!v}"
    done
    psql "$R2B_TEST_DATABASE_URL" -X -q -t -A -v ON_ERROR_STOP=1 -c 'select 1' >/dev/null ||
        svc_die "psql smoke check failed"
    code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$R2B_TEST_S3_ENDPOINT/")" || true
    [[ "$code" == 403 ]] || svc_die "s3s-fs smoke check: unsigned GET / answered '$code', expected 403"
    svc_log "smoke checks passed (psql select 1; unsigned GET / -> 403)"
    if [[ -n "${R2B_SERVICES_HOLD:-}" ]]; then
        # Keep the services up for a while (used to test the traps).
        svc_run_child sleep "$R2B_SERVICES_HOLD"
    fi
    exit 0
fi

# 3. Tests.
rc=0
if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --locked --profile ci $*"
    svc_run_child cargo nextest run --locked --profile ci "$@" || rc=$?
else
    svc_log "warning: cargo-nextest not found (cargo install cargo-nextest --locked); falling back to cargo test"
    step "cargo test --locked $*"
    svc_run_child cargo test --locked "$@" || rc=$?
fi
if [[ "${R2B_SKIP_JS:-0}" != 1 && $# -eq 0 ]]; then step "bash scripts/test-js.sh"; svc_run_child bash scripts/test-js.sh || rc=$?; else svc_log "JS client tests skipped (R2B_SKIP_JS=1 or a filtered run; bash scripts/test-js.sh runs them)"; fi
if [[ "${R2B_SKIP_BROWSER:-0}" != 1 && $# -eq 0 ]]; then step "bash scripts/test-browser.sh"; svc_run_child bash scripts/test-browser.sh || rc=$?; else svc_log "browser tests skipped (R2B_SKIP_BROWSER=1 or a filtered run; bash scripts/test-browser.sh runs them)"; fi

if [[ $rc -ne 0 ]]; then
    svc_log "tests failed (exit $rc); rerun with R2B_KEEP_TEST_DIRS=1 to keep the service logs"
    if [[ -n "${CI:-}" ]]; then
        [[ "$SVC_PG_MODE" == private ]] && svc_tail "$SVC_DIR/pg/postgres.log" 30
        svc_tail "$SVC_DIR/s3/s3s-fs.log" 30
    fi
fi

# 4. Schemathesis against the real binary (pinned, in a venv under target/; see the script).
if [[ "${R2B_SKIP_SCHEMATHESIS:-0}" == 1 ]]; then
    svc_log "schemathesis skipped (R2B_SKIP_SCHEMATHESIS=1)"
elif [[ $# -gt 0 && "${R2B_SCHEMATHESIS:-0}" != 1 ]]; then
    svc_log "schemathesis skipped: a filtered test run (R2B_SCHEMATHESIS=1 runs it anyway)"
else
    # The tests built the binary (tests/it/dev_mode.rs runs it); this makes sure of it.
    step "cargo build --locked"
    if svc_run_child cargo build --locked; then
        step "bash scripts/schemathesis.sh"
        t_st=$(svc_now)
        st_rc=0
        svc_run_child bash scripts/schemathesis.sh "${CARGO_TARGET_DIR:-target}/debug/r2-broker" || st_rc=$?
        svc_log "schemathesis step: exit $st_rc in $(svc_elapsed "$t_st") s"
        [[ $st_rc -eq 0 ]] || rc=$st_rc
    else
        rc=1
    fi
fi
exit "$rc"

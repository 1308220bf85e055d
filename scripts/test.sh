#!/usr/bin/env bash
# r2-broker's test command (CI runs it through .ci/run):
#
#   bash scripts/test.sh                      # fmt, clippy, then every test
#   bash scripts/test.sh -E 'test(quota)'     # extra args go to `cargo nextest run`
#   R2B_SKIP_LINT=1 bash scripts/test.sh      # skip fmt and clippy
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

if [[ $rc -ne 0 ]]; then
    svc_log "tests failed (exit $rc); rerun with R2B_KEEP_TEST_DIRS=1 to keep the service logs"
    if [[ -n "${CI:-}" ]]; then
        [[ "$SVC_PG_MODE" == private ]] && svc_tail "$SVC_DIR/pg/postgres.log" 30
        svc_tail "$SVC_DIR/s3/s3s-fs.log" 30
    fi
fi
exit "$rc"

#!/usr/bin/env bash
# r2-broker's test command (CI runs it through .ci/run):
#
#   bash scripts/test.sh                      # fmt, clippy (in the build), then every test
#   bash scripts/test.sh -E 'test(quota)'     # extra args go to `cargo nextest run`
#   R2B_SKIP_LINT=1 bash scripts/test.sh      # skip fmt and clippy
#   R2B_SKIP_JS=1 / R2B_SKIP_BROWSER=1 / R2B_SKIP_SCHEMATHESIS=1   # skip that step
#
# It starts no service itself: the Rust tests start theirs (tests/it/support: the embedded S3
# store in-process, one private PostgreSQL shared by the run, stopped by its watchdog two
# minutes after the last test; R2B_TEST_DATABASE_URL, or DATABASE_URL here, names an
# existing server instead), and the JS, browser and schemathesis steps run `r2-broker dev`
# (scripts/lib/dev-broker.sh). A filtered run (extra args) skips those three steps;
# R2B_SCHEMATHESIS=1 runs schemathesis anyway. Each step's time is printed, and a summary at
# the end.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

T0=$(now)
TIMES=()
rc=0
# step NAME CMD...: runs CMD, records its time; a failure fails the run but not the next steps.
step() {
    local name=$1 t status=0
    shift
    log "$*"
    t=$(now)
    "$@" || status=$?
    TIMES+=("$(printf '%7ss  %s%s' "$(since "$t")" "$name" "$([[ $status -eq 0 ]] || echo " (exit $status)")")")
    [[ $status -eq 0 ]] || rc=$status
    return 0
}
# shellcheck disable=SC2317 # the EXIT trap
summary() {
    log "times:"
    printf '[test.sh] %s\n' "${TIMES[@]}" "$(printf '%7ss  total' "$(since "$T0")")" >&2
}
trap summary EXIT

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
[[ -d $cargo_bin && ":$PATH:" != *":$cargo_bin:"* ]] && export PATH="$cargo_bin:$PATH"
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"
[[ -n ${DATABASE_URL:-} && -z ${R2B_TEST_DATABASE_URL:-} ]] && export R2B_TEST_DATABASE_URL=$DATABASE_URL
# A fresh clone builds everything once: incremental compilation would only add work.
[[ -n ${CI:-} ]] && export CARGO_INCREMENTAL=0

# The tests run the machine's PostgreSQL binaries; as root on Debian, install them if missing.
if [[ -z ${R2B_TEST_DATABASE_URL:-} ]] && ! command -v initdb >/dev/null 2>&1 &&
    ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "PostgreSQL server binaries (initdb, postgres) not found: install 'postgresql' or set R2B_TEST_DATABASE_URL"
    fi
    export DEBIAN_FRONTEND=noninteractive
    step "apt-get install postgresql" \
        sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null'
fi

# The scanner tests (tests/it/scan.rs) start a private clamd with a signature file of their
# own; under CI they fail without it. As root on Debian, install clamav-daemon if missing.
# The package would start its own clamd and freshclam (a network fetch of the full database,
# then ~1 GB of memory): a policy-rc.d that refuses service starts keeps both stopped, on
# systemd machines too (deb-systemd-invoke asks it). A policy already in place (Docker's
# images ship one) is left alone.
if ! command -v clamd >/dev/null 2>&1 && [[ ! -x /usr/sbin/clamd ]] &&
    [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# scripts/test.sh: no service starts while clamav-daemon installs\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
    fi
    step "apt-get install clamav-daemon" \
        sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends clamav-daemon >/dev/null'
    if [[ $own_policy -eq 1 ]]; then rm -f "$policy"; fi
fi

target="${CARGO_TARGET_DIR:-target}"

# 1. Lint. fmt first: it fails fast. Clippy runs *inside* the test build: `cargo clippy` is
# `cargo check` with clippy-driver as the rustc of the workspace's own crates, so a separate
# clippy run compiles every dependency a second time, in check mode (on 2 cores that was
# ~3 of CI's ~11 minutes). Building the tests with clippy-driver as the workspace wrapper
# gives the same lints (`-D warnings`, every target the tests build: lib, bin, tests, both
# crates) with the dependencies compiled once. `R2B_SKIP_LINT=1` builds with plain rustc.
if [[ ${R2B_SKIP_LINT:-0} != 1 ]]; then
    missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if [[ ${#missing[@]} -gt 0 ]]; then
        command -v rustup >/dev/null 2>&1 || die "missing ${missing[*]} and no rustup to add them"
        step "rustup component add" rustup component add "${missing[@]}"
    fi
    step "fmt" cargo fmt --all -- --check
    driver="$(rustc --print sysroot)/bin/clippy-driver"
    [[ -x $driver ]] || driver="$(command -v clippy-driver)" || die "clippy-driver not found"
    # What `cargo clippy -- -D warnings` hands clippy-driver (its CLIPPY_ARGS encoding).
    export RUSTC_WORKSPACE_WRAPPER="$driver" CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
    log "lints: clippy -D warnings runs in the test build (RUSTC_WORKSPACE_WRAPPER=clippy-driver)"
fi

# 2. The Rust tests (both crates). Building them also builds target/debug/r2-broker, with the
# same features: the later steps run that binary, so no separate `cargo build` is needed.
if cargo nextest --version >/dev/null 2>&1; then
    step "build (tests, binary, clippy)" cargo nextest run --locked --profile ci --no-run "$@"
    [[ $rc -eq 0 ]] && step "nextest" cargo nextest run --locked --profile ci "$@"
else
    log "warning: cargo-nextest not found (cargo install cargo-nextest --locked); falling back to cargo test"
    step "cargo test" cargo test --locked "$@"
fi
pg_log="$target/tmp/r2b-postgres/postgres.log"
if [[ $rc -ne 0 && -n ${CI:-} && -f $pg_log ]]; then
    log "---- last lines of $pg_log (the tests' shared PostgreSQL) ----"
    tail -n 30 "$pg_log" | sed 's/^/    /' >&2
fi
bin="$target/debug/r2-broker"
# Only for a filtered run that built no binary (or a failed build).
ensure_bin() { [[ -x $bin ]] || step "cargo build" cargo build --locked; }

# 3. The JS client, the browser tests and schemathesis, against `r2-broker dev`.
if [[ ${R2B_SKIP_JS:-0} != 1 && $# -eq 0 ]]; then
    ensure_bin
    step "JS client tests" bash scripts/test-js.sh
else
    log "JS client tests skipped (R2B_SKIP_JS=1 or a filtered run; bash scripts/test-js.sh runs them)"
fi
if [[ ${R2B_SKIP_BROWSER:-0} != 1 && $# -eq 0 ]]; then
    ensure_bin
    step "browser tests" bash scripts/test-browser.sh
else
    log "browser tests skipped (R2B_SKIP_BROWSER=1 or a filtered run; bash scripts/test-browser.sh runs them)"
fi
if [[ ${R2B_SKIP_SCHEMATHESIS:-0} == 1 ]]; then
    log "schemathesis skipped (R2B_SKIP_SCHEMATHESIS=1)"
elif [[ $# -gt 0 && ${R2B_SCHEMATHESIS:-0} != 1 ]]; then
    log "schemathesis skipped: a filtered test run (R2B_SCHEMATHESIS=1 runs it anyway)"
else
    ensure_bin
    step "schemathesis" bash scripts/schemathesis.sh "$bin"
fi

[[ $rc -eq 0 ]] || log "failed (exit $rc)"
exit "$rc"

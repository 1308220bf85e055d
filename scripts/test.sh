#!/usr/bin/env bash
# r2-broker's test command (CI runs it through .ci/run):
#
#   bash scripts/test.sh                      # fmt, clippy, then every test
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
    [[ -z ${clippy_pid:-} ]] || kill "$clippy_pid" 2>/dev/null || true
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

target="${CARGO_TARGET_DIR:-target}"

# 1. Lint first: it fails fast. In CI (a fresh clone), clippy runs alongside the test build
# instead: its dependency units (check mode) share nothing with the test build's, so run
# one after the other they cost their sum, while together they fill each other's
# single-threaded stretches (a big crate compiling alone, linking). Clippy then gets a
# target dir of its own (cargo locks one per build) and its output is printed when it ends,
# before the tests run (so they do not compete with it).
clippy_pid=""
if [[ ${R2B_SKIP_LINT:-0} != 1 ]]; then
    missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if [[ ${#missing[@]} -gt 0 ]]; then
        command -v rustup >/dev/null 2>&1 || die "missing ${missing[*]} and no rustup to add them"
        step "rustup component add" rustup component add "${missing[@]}"
    fi
    step "fmt" cargo fmt --all -- --check
    if [[ -n ${CI:-} ]]; then
        mkdir -p "$target"
        log "cargo clippy --all-targets --locked -- -D warnings (alongside the test build)"
        clippy_t=$(now)
        CARGO_TARGET_DIR="$target/clippy" cargo clippy --all-targets --locked -- -D warnings \
            >"$target/clippy.log" 2>&1 &
        clippy_pid=$!
    else
        step "clippy" cargo clippy --all-targets --locked -- -D warnings
    fi
fi
finish_clippy() {
    [[ -n $clippy_pid ]] || return 0
    local status=0
    wait "$clippy_pid" || status=$?
    clippy_pid=""
    if [[ $status -ne 0 ]]; then cat "$target/clippy.log" >&2; else tail -n 1 "$target/clippy.log" >&2; fi
    TIMES+=("$(printf '%7ss  %s%s' "$(since "$clippy_t")" "clippy (alongside the build)" \
        "$([[ $status -eq 0 ]] || echo " (exit $status)")")")
    [[ $status -eq 0 ]] || rc=$status
}

# 2. The Rust tests (both crates). Building them also builds target/debug/r2-broker, with the
# same features: the later steps run that binary, so no separate `cargo build` is needed.
if cargo nextest --version >/dev/null 2>&1; then
    if [[ -n $clippy_pid ]]; then
        step "nextest build" cargo nextest run --locked --profile ci --no-run "$@"
        finish_clippy
    fi
    step "nextest" cargo nextest run --locked --profile ci "$@"
else
    finish_clippy
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

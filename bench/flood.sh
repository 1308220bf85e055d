#!/usr/bin/env bash
# Connection floods against a real `r2-broker serve` (issue 11 item 3): starts PostgreSQL and
# the S3 store with `r2-broker dev` (bench/lib/dev-services.sh), the release broker with its
# default settings (one worker per core, unpinned), mints a token, runs bench/flood.py and
# stops everything.
#
#   bash bench/flood.sh                       # keep-alive bursts, then slow-body stall + trickle
#   bash bench/flood.sh keepalive --bursts 2  # arguments after the first go to flood.py
#   BROKER_BIN=target/release/r2-broker bash bench/flood.sh slowbody --mode stall
#
# The broker's environment passes through (BROKER_MAX_CONNECTIONS, BROKER_BODY_TIMEOUT,
# MALLOC_ARENA_MAX, ...). Results: $BENCH_DIR/flood/<UTC time>/ (report.json, broker.log,
# flood.out); BENCH_DIR defaults to ~/.cache/r2b-bench.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-$HOME/.cache/r2b-bench}"
CMD="${1:-all}"
[[ $# -gt 0 ]] && shift
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RD="${RESULTS_DIR:-$BENCH_DIR/flood/$STAMP}"
mkdir -p "$RD"
log() { printf '[flood.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# shellcheck source=bench/lib/dev-services.sh
source "$ROOT/bench/lib/dev-services.sh"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
[[ -d $cargo_bin && ":$PATH:" != *":$cargo_bin:"* ]] && export PATH="$cargo_bin:$PATH"

BROKER_PID=""
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID"
        for _ in $(seq 1 100); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$BROKER_PID" 2>/dev/null
    fi
    services_stop
    rm -f "$RD/r2-broker"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "${BROKER_BIN:-}" ]]; then
    SRC_BIN="$BROKER_BIN"
else
    log "cargo build --release --locked"
    (cd "$ROOT" && cargo build --release --locked) >&2 || die "release build failed"
    SRC_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/r2-broker"
fi
cp "$SRC_BIN" "$RD/r2-broker" # others may rebuild target/release while we run

services_start "$RD/r2-broker"
DB_URL="$(services_create_db r2b_flood)"
services_bucket flood

SECRET="flood-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TOKEN="$(services_token "$SECRET" flood-user)"
PORT="$(free_port)"
env BROKER_LISTEN="127.0.0.1:$PORT" DATABASE_URL="$DB_URL" \
    S3_ENDPOINT="$S3_ENDPOINT_URL" S3_BUCKET=flood S3_PROVIDER=s3 \
    S3_ACCESS_KEY_ID="$S3_KEY" S3_SECRET_ACCESS_KEY="$S3_SECRET" \
    JWT_SECRET="$SECRET" RUST_LOG="${BROKER_RUST_LOG:-warn}" \
    setsid "$RD/r2-broker" serve </dev/null >"$RD/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 1 300); do
    [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")" == 200 ]] && break
    kill -0 "$BROKER_PID" 2>/dev/null || { tail -n 30 "$RD/broker.log" >&2; die "broker exited"; }
    sleep 0.1
done
log "broker pid $BROKER_PID on 127.0.0.1:$PORT; results in $RD"
{
    echo "date_utc	$(date -u +%FT%TZ)"
    echo "host	$(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "broker	r2-broker git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (+$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l) changed files), sha256 $(sha256sum "$RD/r2-broker" | cut -c1-16)"
    echo "env	$(env | grep -E '^(BROKER_|MALLOC_|GLIBC_TUNABLES)' | tr '\n' ' ')"
} | tee "$RD/env.tsv" >&2
FLOOD_TOKEN="$TOKEN" python3 "$ROOT/bench/flood.py" "$CMD" --url "http://127.0.0.1:$PORT" --pid "$BROKER_PID" \
    --out "$RD/report.json" "$@" 2>&1 | tee "$RD/flood.out"
grep -iE 'warn|error|panic' "$RD/broker.log" | sort | uniq -c | sort -rn | head -20 >&2 || true

#!/usr/bin/env bash
# bench/run.sh — r2-broker's benchmark (issue 6). One command:
#
#   bash bench/run.sh                    # the matrix: every scenario x CONCURRENCY x REPEATS
#   bash bench/run.sh --with-companion   # r2-broker and Uppy Companion in the same run
#                                        #   (../shared/bench/peer-companion.sh + EXTRA_TARGETS)
#   bash bench/run.sh --scale 3          # 3 brokers on one PostgreSQL: exact quota under
#                                        #   concurrent creates, then throughput 1 vs 2 vs 3
#   bash bench/run.sh --help
#
# It builds the release binary (cargo build --release --locked), installs oha if missing
# (cargo install oha --locked --version $OHA_VERSION into $BENCH_DIR), starts the embedded
# S3 store and a private PostgreSQL with `r2-broker dev` (bench/lib/dev-services.sh), starts
# the broker (pinned with taskset, one worker), mints HS256 tokens (`r2-broker dev token`),
# makes the fixtures (a completed
# asset, a multipart intent with >= 100 parts, pre-uploaded put intents) and drives the
# load from a second process (oha, or bench/r2b.py for first-time completes) pinned to
# another CPU. Per run it samples /proc: broker CPU (utime+stime), CPU of every process of
# the private PostgreSQL cluster, store CPU (the `r2-broker dev` process), machine busy time, broker VmRSS / VmHWM.
# Everything it installs or writes goes under $BENCH_DIR (never into the repository);
# results under $BENCH_DIR/results/<UTC time>[-companion|-scale]/ (summary.md, runs.tsv,
# env.tsv, meta.tsv, raw/ with every oha JSON). It stops what it started, by PID.
#
# Settings (environment), defaults in brackets:
#   BENCH_DIR [~/.cache/r2b-bench]
#   DURATION [10] s per run   CONCURRENCY ["1 16 64"]   REPEATS [3]   WARMUP [3] s per scenario
#   REQUEST_TIMEOUT [5s]
#   SCENARIOS ["create-put create-put-owners create-multipart parts-1 parts-100 download-url complete
#              complete-sniff complete-repeat mixed"] (complete-sniff: complete in a profile that sniffs)
#   SERVER_CPUS [0]     taskset CPU list for the broker ("" = unpinned)
#   LOADGEN_CPUS [1]    taskset CPU list for oha / r2b.py ("" = unpinned)
#   BROKER_WORKERS [1]  actix workers of the broker (BROKER_DB_POOL_SIZE: the broker's default)
#   BROKER_RUST_LOG [info]   RUST_LOG of the broker (info = as deployed by default)
#   PARTS_SIZE [2147483648]  size of the multipart intent the part scenarios use (128 parts)
#   MULTIPART_SIZE [1073741824]  size declared by create-multipart (64 parts of 16 MiB)
#   COMPLETE_N [2000]   first-time completes per (concurrency, repeat): count-based, not DURATION
#   COMPLETE_WARMUP [200]
#   OWNERS [1000]       create-put-owners: owners the creates are spread over (admin token + owner)
#   MIX ["download-url:50 create-put-owners:30 parts-10:10 create-multipart:5 complete-repeat:5"]
#   MIX_RATE [""]       total req/s of `mixed` (oha -q per component, --latency-correction);
#                       empty = closed loop (every component as fast as it goes)
#   PERF_SCENARIOS [""] e.g. "create-put parts-100": perf profiles (broker + PostgreSQL
#                       backends) of those scenarios' first run at the highest concurrency,
#                       as text in the results (the profiled run's CPU figures include perf)
#   OHA [oha on PATH if it is $OHA_VERSION, else $BENCH_DIR/cargo/bin/oha]  OHA_VERSION [1.16.0]
#   BROKER_BIN [build]  use this binary instead of building
#   --with-companion:   PEER_BENCH [../shared/bench]  SIDE_TARGETS ["put parts-1 parts-100 download-url"]
#                       PEER_BENCH_DIR [$BENCH_DIR/peer] (Companion, moto and their venv go there)
#   --scale N:          SCALE_K [500] quota (objects) of the owner in the exactness check
#                       SCALE_REQUESTS [K] creates sent to each broker, SCALE_ROUNDS [3]
#                       SCALE_CONFIGS ["1:1 2:1 3:1 1:2"] brokers:workers for the throughput part
#                       (default: 1..N brokers with 1 worker, then 1 broker with 2 workers)
#                       SCALE_CONC [64] total connections, split over the brokers
#                       SCALE_SCENARIO [create-put-owners] what the throughput part sends
#                       SCALE_SERVER_CPUS [""] SCALE_LOADGEN_CPUS [""] (unpinned)
set -euo pipefail

BENCH_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_SRC/.." && pwd)"

MODE=matrix
SCALE_N=3
while (($#)); do
    case "$1" in
    --with-companion) MODE=companion ;;
    --scale) MODE=scale; SCALE_N="${2:?--scale needs a number}"; shift ;;
    --scale=*) MODE=scale; SCALE_N="${1#--scale=}" ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ "$SCALE_N" =~ ^[1-9][0-9]*$ ]] || { echo "bench/run.sh: --scale wants a positive number" >&2; exit 2; }

BENCH_DIR="${BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/r2b-bench}"
DURATION="${DURATION:-10}"
CONCURRENCY="${CONCURRENCY:-1 16 64}"
CONCURRENCY="${CONCURRENCY//,/ }"
REPEATS="${REPEATS:-3}"
WARMUP="${WARMUP:-3}"
REQUEST_TIMEOUT="${REQUEST_TIMEOUT:-5s}"
SCENARIOS="${SCENARIOS:-create-put create-put-owners create-multipart parts-1 parts-100 download-url complete complete-sniff complete-repeat mixed}"
OWNERS="${OWNERS:-1000}"
SERVER_CPUS="${SERVER_CPUS-0}"
LOADGEN_CPUS="${LOADGEN_CPUS-1}"
if (($(nproc) < 2)); then SERVER_CPUS=""; LOADGEN_CPUS=""; fi
BROKER_WORKERS="${BROKER_WORKERS:-1}"
BROKER_RUST_LOG="${BROKER_RUST_LOG:-info}"
PARTS_SIZE="${PARTS_SIZE:-2147483648}"
MULTIPART_SIZE="${MULTIPART_SIZE:-1073741824}"
COMPLETE_N="${COMPLETE_N:-2000}"
COMPLETE_WARMUP="${COMPLETE_WARMUP:-200}"
MIX="${MIX:-download-url:50 create-put-owners:30 parts-10:10 create-multipart:5 complete-repeat:5}"
MIX_RATE="${MIX_RATE:-}"
PERF_SCENARIOS="${PERF_SCENARIOS:-}"
OHA_VERSION="${OHA_VERSION:-1.16.0}"
PEER_BENCH="${PEER_BENCH:-$ROOT/../shared/bench}"
PEER_BENCH_DIR="${PEER_BENCH_DIR:-$BENCH_DIR/peer}"
SIDE_TARGETS="${SIDE_TARGETS:-put parts-1 parts-100 download-url}"
SCALE_K="${SCALE_K:-500}"
SCALE_REQUESTS="${SCALE_REQUESTS:-$SCALE_K}"
SCALE_ROUNDS="${SCALE_ROUNDS:-3}"
SCALE_CONC="${SCALE_CONC:-64}"
SCALE_SCENARIO="${SCALE_SCENARIO:-create-put-owners}"
SCALE_SERVER_CPUS="${SCALE_SERVER_CPUS-}"
SCALE_LOADGEN_CPUS="${SCALE_LOADGEN_CPUS-}"
if [[ -z "${SCALE_CONFIGS:-}" ]]; then
    SCALE_CONFIGS=""
    for ((i = 1; i <= SCALE_N; i++)); do SCALE_CONFIGS+="$i:1 "; done
    SCALE_CONFIGS+="1:2"
fi

BUCKET=bench
OWNER=bench-user
HUGE=4611686018427387904 # 2^62: "no quota" for the bench owner (bytes and objects)
R2B_PY="$BENCH_SRC/r2b.py"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
case "$MODE" in
matrix) RD="${RESULTS_DIR:-$BENCH_DIR/results/$STAMP}" ;;
companion) RD="${RESULTS_DIR:-$BENCH_DIR/results/$STAMP-companion}" ;;
scale) RD="${RESULTS_DIR:-$BENCH_DIR/results/$STAMP-scale}" ;;
esac
RUN="$BENCH_DIR/run"
mkdir -p "$RD/raw" "$RUN"
# `complete-sniff` completes intents of this profile: its type rule turns content sniffing on
# (one ranged GET of the first 4 KiB in `complete`); `complete` uses the default profile.
printf '[profiles.sniffed]\nallowed_content_types = ["image/jpeg"]\n' >"$RUN/profiles.toml"

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for t in cargo python3 curl taskset setsid; do command -v "$t" >/dev/null || die "$t is required"; done

# shellcheck source=bench/lib/dev-services.sh
source "$ROOT/bench/lib/dev-services.sh"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
[[ -d $cargo_bin && ":$PATH:" != *":$cargo_bin:"* ]] && export PATH="$cargo_bin:$PATH"

# ------------------------------------------------------------------ cleanup (by PID)
BROKER_PIDS=()
PIDFILE="$RUN/brokers.$$.pids"
BIN=""
BENCH_WATCHDOG=""

stop_broker() { # stop_broker PID
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
stop_brokers() {
    local p
    for p in "${BROKER_PIDS[@]}"; do stop_broker "$p"; done
    BROKER_PIDS=()
    echo "$SVC_PID" >"$PIDFILE" # the services stay protected
}
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_brokers
    if [[ -n "$BENCH_WATCHDOG" ]]; then kill -TERM "$BENCH_WATCHDOG" 2>/dev/null; wait "$BENCH_WATCHDOG" 2>/dev/null; fi
    services_stop
    rm -f "$PIDFILE" "$RUN/r2-broker.$$"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ build + oha
if [[ -n "${BROKER_BIN:-}" ]]; then
    [[ -x "$BROKER_BIN" ]] || die "BROKER_BIN=$BROKER_BIN is not executable"
    SRC_BIN="$BROKER_BIN"
else
    log "cargo build --release --locked (minutes on 2 cores when the sources changed)"
    (cd "$ROOT" && cargo build --release --locked) >&2 || die "release build failed"
    SRC_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/r2-broker"
fi
# A private copy: others may rebuild target/release while we run (all brokers of a run
# must be the same binary).
BIN="$RUN/r2-broker.$$"
cp "$SRC_BIN" "$BIN"

oha_version_ok() { [[ "$("$1" --version 2>/dev/null | awk '{print $2}')" == "$OHA_VERSION" ]]; }
if [[ -z "${OHA:-}" ]]; then
    if command -v oha >/dev/null 2>&1 && oha_version_ok "$(command -v oha)"; then
        OHA="$(command -v oha)"
    else
        OHA="$BENCH_DIR/cargo/bin/oha"
        if ! oha_version_ok "$OHA"; then
            log "installing oha $OHA_VERSION (cargo install --locked; a few minutes on 2 cores, once)"
            CARGO_TARGET_DIR="$BENCH_DIR/cargo-target" cargo install oha --locked --version "$OHA_VERSION" \
                --root "$BENCH_DIR/cargo" >&2 || die "cargo install oha failed"
        fi
    fi
fi
export OHA

# ------------------------------------------------------------------ PostgreSQL + store
services_start "$BIN"
DB_URL="$(services_create_db r2b_bench)"
psql_q() { svc_psql -d "${PSQL_DB:-r2b_bench}" -c "$1"; }
services_bucket "$BUCKET"

# Brokers (and `r2-broker dev`, which takes its PostgreSQL along) die with us even if we are
# killed outright.
: >"$PIDFILE"
echo "$SVC_PID" >>"$PIDFILE"
# shellcheck disable=SC2016 # expanded by the inner bash
setsid bash -c '
    parent=$1 f=$2
    while kill -0 "$parent" 2>/dev/null; do sleep 1; done
    [ -f "$f" ] || exit 0
    while read -r p; do
        tr "\0" " " < "/proc/$p/cmdline" 2>/dev/null | grep -q "r2-broker" && kill -TERM "$p"
    done < "$f"
' r2b-bench-watchdog "$$" "$PIDFILE" </dev/null >/dev/null 2>&1 &
BENCH_WATCHDOG=$!

JWT_SECRET="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
JWT="$(services_token "$JWT_SECRET" "$OWNER")"
ADMIN_JWT="$(services_token "$JWT_SECRET" bench-admin --admin)"

# start_broker NAME CPUS WORKERS -> sets BROKER_PID, BROKER_PORT
start_broker() {
    local name=$1 cpus=$2 workers=$3 port attempt
    local -a pin=()
    [[ -n "$cpus" ]] && pin=(taskset -c "$cpus")
    for attempt in 1 2 3; do
        port="$(free_port)"
        env BROKER_LISTEN="127.0.0.1:$port" DATABASE_URL="$DB_URL" \
            S3_ENDPOINT="$S3_ENDPOINT_URL" S3_BUCKET="$BUCKET" S3_PROVIDER=s3 \
            S3_ACCESS_KEY_ID="$S3_KEY" S3_SECRET_ACCESS_KEY="$S3_SECRET" \
            JWT_SECRET="$JWT_SECRET" BROKER_WORKERS="$workers" \
            BROKER_DEFAULT_QUOTA_BYTES="$HUGE" BROKER_DEFAULT_QUOTA_OBJECTS="$HUGE" \
            RUST_LOG="$BROKER_RUST_LOG" BROKER_PROFILES="$RUN/profiles.toml" \
            setsid "${pin[@]}" "$BIN" serve </dev/null >>"$RD/broker-$name.log" 2>&1 &
        BROKER_PID=$!
        echo "$BROKER_PID" >>"$PIDFILE"
        BROKER_PIDS+=("$BROKER_PID")
        for _ in $(seq 1 300); do
            if [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/readyz")" == 200 ]]; then
                BROKER_PORT=$port
                log "broker $name up: pid $BROKER_PID, 127.0.0.1:$port, cpus ${cpus:-any}, workers $workers"
                return 0
            fi
            kill -0 "$BROKER_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop_broker "$BROKER_PID"
        if ((attempt < 3)) && grep -qi 'address already in use\|cannot listen' "$RD/broker-$name.log"; then continue; fi
        tail -n 30 "$RD/broker-$name.log" >&2
        die "broker $name did not become ready (log: $RD/broker-$name.log)"
    done
}

LPIN=()
[[ -n "$LOADGEN_CPUS" ]] && LPIN=(taskset -c "$LOADGEN_CPUS")
cpu_count() { python3 -c 'import sys
n=0
for p in sys.argv[1].split(","):
    a,_,b=p.partition("-"); n+=(int(b)-int(a)+1) if b else 1
print(n)' "$1"; }
OHA_THREADS="${OHA_THREADS:-$([[ -n "$LOADGEN_CPUS" ]] && cpu_count "$LOADGEN_CPUS" || nproc)}"

write_env() {
    local rev dirty
    rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    dirty="$(git -C "$ROOT" status --porcelain -- src sql Cargo.toml Cargo.lock 2>/dev/null | wc -l)"
    {
        echo "date_utc	$(date -u +%FT%TZ)"
        echo "host	$(uname -srm), $(nproc) CPUs ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
        echo "load_at_start	$(cut -d' ' -f1-3 /proc/loadavg)"
        echo "broker	r2-broker git $rev (+$dirty changed files under src/ sql/ Cargo.*), release build, sha256 $(sha256sum "$BIN" | cut -c1-16)"
        echo "oha	$("$OHA" --version 2>/dev/null)"
        echo "postgres	$PG_VERSION, private cluster of r2-broker dev: fsync=off synchronous_commit=off full_page_writes=off shared_buffers=128MB, unpinned"
        echo "store	s3s-fs 0.14.1 embedded in r2-broker dev (pid $SVC_PID), unpinned"
        [[ "$MODE" == scale ]] && echo "scale	brokers=$SCALE_N SCALE_K=$SCALE_K SCALE_REQUESTS=$SCALE_REQUESTS (per broker) SCALE_ROUNDS=$SCALE_ROUNDS SCALE_CONFIGS='$SCALE_CONFIGS' SCALE_CONC=$SCALE_CONC SCALE_SERVER_CPUS=${SCALE_SERVER_CPUS:-none} SCALE_LOADGEN_CPUS=${SCALE_LOADGEN_CPUS:-none}"
        echo "settings	mode=$MODE DURATION=${DURATION}s CONCURRENCY=$CONCURRENCY REPEATS=$REPEATS WARMUP=${WARMUP}s REQUEST_TIMEOUT=$REQUEST_TIMEOUT SERVER_CPUS=${SERVER_CPUS:-none} LOADGEN_CPUS=${LOADGEN_CPUS:-none} OHA_THREADS=$OHA_THREADS BROKER_WORKERS=$BROKER_WORKERS RUST_LOG=$BROKER_RUST_LOG COMPLETE_N=$COMPLETE_N MIX='$MIX' MIX_RATE=${MIX_RATE:-closed-loop}"
    } >"$RD/env.tsv"
}

sample() { python3 "$R2B_PY" sample --broker "$(IFS=,; echo "$*")" --pg "$PM_PID" --s3 "$SVC_PID"; }

# oha_run OUT oha-args... (pinned to LOADGEN_CPUS, bounded by an outer timeout)
oha_run() {
    local out=$1; shift
    timeout --signal=INT --kill-after=10 $((DURATION + WARMUP + 60)) \
        "${LPIN[@]}" "$OHA" --no-tui -t "$REQUEST_TIMEOUT" --output-format json "$@" >"$out"
}

# ------------------------------------------------------------------ scenarios
PUT_BODY='{"filename":"photo.jpg","content_type":"image/jpeg","size":1048576,"method":"put"}'
MP_BODY="{\"filename\":\"big.bin\",\"content_type\":\"application/octet-stream\",\"size\":$MULTIPART_SIZE,\"method\":\"multipart\"}"
parts_body() { python3 -c 'import json,sys; print(json.dumps({"part_numbers": list(range(1, int(sys.argv[1]) + 1))}, separators=(",", ":")))' "$1"; }
PARTS1_BODY="$(parts_body 1)"
PARTS10_BODY="$(parts_body 10)"
PARTS100_BODY="$(parts_body 100)"
# create-put-owners: the same create, for OWNERS different owners (an admin token acting for
# `owner`; oha picks one body line at random per request), so creates do not all queue on
# one owner's quota row.
OWNER_BODIES="$RD/owner-bodies.txt"
python3 -c 'import json,sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"filename": "photo.jpg", "content_type": "image/jpeg", "size": 1048576, "method": "put",
                      "owner": f"bench-owner-{i:05d}"}, separators=(",", ":")))' "$OWNERS" >"$OWNER_BODIES"

make_fixtures() { # make_fixtures BASE -> ASSET_ID, DONE_UPLOAD_ID, PARTS_UPLOAD_ID
    PARTS_SIZE="$PARTS_SIZE" python3 "$R2B_PY" setup "$1" "$JWT" "$RD/fixtures.json" >/dev/null || die "fixtures failed"
    read -r ASSET_ID DONE_UPLOAD_ID PARTS_UPLOAD_ID < <(python3 -c 'import json,sys
d=json.load(open(sys.argv[1])); print(d["asset_id"], d["completed_upload_id"], d["parts_upload_id"])' "$RD/fixtures.json")
    log "fixtures: asset $ASSET_ID (completed upload $DONE_UPLOAD_ID), multipart intent $PARTS_UPLOAD_ID ($(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["part_count"], "parts")' "$RD/fixtures.json"))"
}

# scenario_args NAME BASE [TOKEN] -> array A (oha args, URL last)
scenario_args() {
    local base=$2 tok=${3:-$JWT}
    local -a auth=(-H "authorization: Bearer $tok")
    case "$1" in
    create-put | put) A=(-m POST -T application/json "${auth[@]}" -d "$PUT_BODY" "$base/v1/uploads") ;;
    create-put-owners) A=(-m POST -T application/json -H "authorization: Bearer $ADMIN_JWT" -Z "$OWNER_BODIES" "$base/v1/uploads") ;;
    create-multipart) A=(-m POST -T application/json "${auth[@]}" -d "$MP_BODY" "$base/v1/uploads") ;;
    parts-1) A=(-m POST -T application/json "${auth[@]}" -d "$PARTS1_BODY" "$base/v1/uploads/$PARTS_UPLOAD_ID/parts") ;;
    parts-10) A=(-m POST -T application/json "${auth[@]}" -d "$PARTS10_BODY" "$base/v1/uploads/$PARTS_UPLOAD_ID/parts") ;;
    parts-100) A=(-m POST -T application/json "${auth[@]}" -d "$PARTS100_BODY" "$base/v1/uploads/$PARTS_UPLOAD_ID/parts") ;;
    download-url) A=("${auth[@]}" "$base/v1/assets/$ASSET_ID/download-url") ;;
    complete-repeat) A=(-m POST -T application/json "${auth[@]}" -d '{}' "$base/v1/uploads/$DONE_UPLOAD_ID/complete") ;;
    *) die "no oha scenario '$1'" ;;
    esac
}

preflight() { # preflight NAME BASE: one request with curl, 2xx wanted
    local name=$1 base=$2 code method=GET url i
    local -a data=() hdr=()
    scenario_args "$name" "$base"
    url="${A[-1]}"
    for ((i = 0; i < ${#A[@]} - 1; i++)); do
        case "${A[$i]}" in
        -m) method="${A[$((i + 1))]}" ;;
        -H) hdr+=(-H "${A[$((i + 1))]}") ;;
        -T) hdr+=(-H "content-type: ${A[$((i + 1))]}") ;;
        -d) data=(--data-binary "${A[$((i + 1))]}") ;;
        -Z) data=(--data-binary "$(head -n 1 "${A[$((i + 1))]}")") ;;
        esac
    done
    code="$(curl -s -o "$RD/raw/preflight-$name.json" -w '%{http_code}' -X "$method" "${hdr[@]}" "${data[@]}" "$url")"
    [[ "$code" =~ ^2 ]] || die "preflight $name: HTTP $code $(head -c 300 "$RD/raw/preflight-$name.json")"
    log "preflight ok: $name -> HTTP $code"
}

# ------------------------------------------------------------------ matrix
RUNS_HEADER='scenario	concurrency	rep	json	broker_ticks	pg_ticks	s3_ticks	busy_jiffies	total_jiffies	rss_kb	hwm_kb	components'
record() { # record SCENARIO C REP JSONS S0 S1 COMPONENTS
    local -a a b
    read -ra a <<<"$5"
    read -ra b <<<"$6"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" \
        $((b[0] - a[0])) $((b[1] - a[1])) $((b[2] - a[2])) $((b[3] - a[3])) $((b[4] - a[4])) "${b[5]}" "${b[6]}" "$7" \
        >>"$RD/runs.tsv"
}

# run_mixed C OUTPREFIX -> MIX_JSONS, MIX_NAMES (one oha per component, all at once)
run_mixed() {
    local c=$1 prefix=$2 entry name w conns total=0 pids=() q
    MIX_JSONS="" MIX_NAMES=""
    for entry in $MIX; do total=$((total + ${entry#*:})); done
    for entry in $MIX; do
        name=${entry%:*} w=${entry#*:}
        conns=$(((c * w + total / 2) / total))
        ((conns < 1)) && conns=1
        scenario_args "$name" "$BASE"
        local -a extra=()
        if [[ -n "$MIX_RATE" ]]; then
            q=$(python3 -c "print(max(1, round($MIX_RATE * $w / $total)))")
            extra=(-q "$q" --latency-correction)
        fi
        oha_run "$RD/$prefix-$name.json" --worker-threads 1 -w -z "${DURATION}s" -c "$conns" "${extra[@]}" "${A[@]}" &
        pids+=($!)
        MIX_JSONS+="${MIX_JSONS:+,}$prefix-$name.json"
        MIX_NAMES+="${MIX_NAMES:+,}$name(c=$conns)"
    done
    local p rc=0
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return $rc
}

# Optional profiles (PERF_SCENARIOS="create-put ..."): perf record of the broker and of
# every PostgreSQL backend during the scenario's first run at the highest concurrency.
perf_start() { # perf_start SCENARIO BROKER_PID -> perf_pids
    local s=$1 bpid=$2 pg
    command -v perf >/dev/null || { log "perf not found: no profile"; return 0; }
    pg="$(pgrep -d, -P "$PM_PID" || true)"
    perf record -q -F 499 -g --call-graph dwarf,16384 -p "$bpid" -o "$RD/perf-broker-$s.data" \
        -- sleep "$DURATION" >"$RD/perf-broker-$s.log" 2>&1 &
    perf_pids+=($!)
    if [[ -n "$pg" ]]; then
        perf record -q -F 499 -g -p "$pg" -o "$RD/perf-postgres-$s.data" -- sleep "$DURATION" >"$RD/perf-postgres-$s.log" 2>&1 &
        perf_pids+=($!)
    fi
}
perf_finish() { # perf_finish SCENARIO: wait for the recorders, write text reports
    local s=$1 p who
    for p in "${perf_pids[@]}"; do wait "$p" || true; done
    for who in broker postgres; do
        [[ -f "$RD/perf-$who-$s.data" ]] || continue
        {
            echo "# perf: $who during $s (self time, then inclusive time)"
            perf report -i "$RD/perf-$who-$s.data" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -8
            perf report -i "$RD/perf-$who-$s.data" --no-children --sort symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-160 | head -40
            echo
            perf report -i "$RD/perf-$who-$s.data" --children --sort symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-160 | head -200
        } >"$RD/perf-$who-$s.txt" || true # (head closes the pipes early)
        rm -f "$RD/perf-$who-$s.data"
        log "profile: $RD/perf-$who-$s.txt"
    done
}

run_matrix() {
    start_broker main "$SERVER_CPUS" "$BROKER_WORKERS"
    local bpid=$BROKER_PID
    BASE="http://127.0.0.1:$BROKER_PORT"
    local rss_start
    rss_start="$(awk '/^VmRSS:/{print $2}' "/proc/$bpid/status")"
    make_fixtures "$BASE"

    local s n_conc=0 c rep need=0 ids="$RD/complete.ids" next=0
    local need_sniff=0 ids_sniff="$RD/complete-sniff.ids" next_sniff=0
    for c in $CONCURRENCY; do n_conc=$((n_conc + 1)); done
    for s in $SCENARIOS; do
        case "$s" in
        complete) need=$((COMPLETE_WARMUP + COMPLETE_N * n_conc * REPEATS)) ;;
        complete-sniff) need_sniff=$((COMPLETE_WARMUP + COMPLETE_N * n_conc * REPEATS)) ;;
        mixed) local e; for e in $MIX; do preflight "${e%:*}" "$BASE"; done ;;
        *) preflight "$s" "$BASE" ;;
        esac
    done
    if ((need > 0)); then
        log "complete: preparing $need put intents with their bytes uploaded to s3s-fs"
        python3 "$R2B_PY" prepare-complete "$BASE" "$JWT" "$need" "$ids" >/dev/null || die "prepare-complete failed"
    fi
    if ((need_sniff > 0)); then
        log "complete-sniff: preparing $need_sniff put intents of the sniffed profile"
        python3 "$R2B_PY" prepare-complete "$BASE" "$JWT" "$need_sniff" "$ids_sniff" sniffed >/dev/null ||
            die "prepare-complete (sniffed) failed"
    fi
    local rss_before
    rss_before="$(awk '/^VmRSS:/{print $2}' "/proc/$bpid/status")"
    write_env

    if ((WARMUP > 0)); then
        for s in $SCENARIOS; do
            case "$s" in
            complete)
                log "warm-up complete: $COMPLETE_WARMUP ids c=16"
                "${LPIN[@]}" python3 "$R2B_PY" complete "$BASE" "$JWT" "$ids" 0 "$COMPLETE_WARMUP" 16 "$RD/raw/warmup-complete.json"
                next=$COMPLETE_WARMUP ;;
            complete-sniff)
                log "warm-up complete-sniff: $COMPLETE_WARMUP ids c=16"
                "${LPIN[@]}" python3 "$R2B_PY" complete "$BASE" "$JWT" "$ids_sniff" 0 "$COMPLETE_WARMUP" 16 "$RD/raw/warmup-complete-sniff.json"
                next_sniff=$COMPLETE_WARMUP ;;
            mixed) ;;
            *)
                log "warm-up $s ${WARMUP}s c=16"
                scenario_args "$s" "$BASE"
                oha_run "$RD/raw/warmup-$s.json" --worker-threads "$OHA_THREADS" -w -z "${WARMUP}s" -c 16 "${A[@]}" ;;
            esac
        done
    else
        next=$COMPLETE_WARMUP next_sniff=$COMPLETE_WARMUP
    fi

    echo "$RUNS_HEADER" >"$RD/runs.tsv"
    local s0 s1 f comps
    for rep in $(seq 1 "$REPEATS"); do
        for c in $CONCURRENCY; do
            for s in $SCENARIOS; do
                f="raw/$s-c$c-r$rep.json" comps=""
                local perf_pids=()
                if [[ " $PERF_SCENARIOS " == *" $s "* && "$rep" == 1 && "$c" == "${CONCURRENCY##* }" ]]; then
                    perf_start "$s" "$bpid"
                fi
                s0="$(sample "$bpid")"
                case "$s" in
                complete)
                    "${LPIN[@]}" python3 "$R2B_PY" complete "$BASE" "$JWT" "$ids" "$next" "$COMPLETE_N" "$c" "$RD/$f"
                    next=$((next + COMPLETE_N)) ;;
                complete-sniff)
                    "${LPIN[@]}" python3 "$R2B_PY" complete "$BASE" "$JWT" "$ids_sniff" "$next_sniff" "$COMPLETE_N" "$c" "$RD/$f"
                    next_sniff=$((next_sniff + COMPLETE_N)) ;;
                mixed)
                    run_mixed "$c" "raw/mixed-c$c-r$rep" || log "warning: an oha of mixed failed"
                    f="$MIX_JSONS" comps="$MIX_NAMES" ;;
                *)
                    scenario_args "$s" "$BASE"
                    oha_run "$RD/$f" --worker-threads "$OHA_THREADS" -w -z "${DURATION}s" -c "$c" "${A[@]}" ;;
                esac
                s1="$(sample "$bpid")"
                ((${#perf_pids[@]})) && perf_finish "$s"
                record "$s" "$c" "$rep" "$f" "$s0" "$s1" "$comps"
                local j one=""
                for j in ${f//,/ }; do one+="${one:+ | }$(python3 "$R2B_PY" one "$RD/$j")"; done
                log "$s c=$c rep=$rep: $one"
            done
        done
    done

    {
        echo "rss_start_kb	$rss_start"
        echo "rss_before_kb	$rss_before"
        echo "rss_after_kb	$(awk '/^VmRSS:/{print $2}' "/proc/$bpid/status")"
        echo "hwm_kb	$(awk '/^VmHWM:/{print $2}' "/proc/$bpid/status")"
        echo "broker_pid	$bpid"
    } >"$RD/meta.tsv"
    {
        echo "# r2-broker bench — $(date -u +%FT%TZ)"
        echo
        sed 's/^/    /' "$RD/env.tsv"
        echo
        python3 "$R2B_PY" summarize "$RD"
    } >"$RD/summary.md"
    echo
    cat "$RD/summary.md"
    echo
    echo "results: $RD"
}

# ------------------------------------------------------------------ side by side with Companion
run_companion() {
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null ||
        die "Companion needs node ^20.19 or >= 22 (have $(node --version 2>/dev/null || echo none))"
    [[ -f "$PEER_BENCH/peer-companion.sh" ]] || die "no $PEER_BENCH/peer-companion.sh (set PEER_BENCH)"
    start_broker main "$SERVER_CPUS" "$BROKER_WORKERS"
    local bpid=$BROKER_PID t name
    BASE="http://127.0.0.1:$BROKER_PORT"
    make_fixtures "$BASE"
    write_env
    local tsv="$RD/r2b-targets.tsv" w line
    : >"$tsv"
    for t in $SIDE_TARGETS; do
        preflight "$t" "$BASE"
        scenario_args "$t" "$BASE"
        line=""
        for w in "${A[@]}"; do line+="${line:+ }$(printf '%q' "$w")"; done
        name="r2b-$t"; [[ "$t" == put ]] && name=r2b-put
        printf '%s\t%s\t%s\n' "$name" "$bpid" "$line" >>"$tsv"
    done
    log "targets for measure.sh: $tsv"
    local s0 s1
    s0="$(sample "$bpid")"
    log "running $PEER_BENCH/peer-companion.sh with EXTRA_TARGETS=$tsv"
    BENCH_DIR="$PEER_BENCH_DIR" RESULTS_DIR="$RD" EXTRA_TARGETS="$tsv" OHA="$OHA" \
        DURATION="$DURATION" CONCURRENCY="$CONCURRENCY" REPEATS="$REPEATS" WARMUP="$WARMUP" \
        REQUEST_TIMEOUT="$REQUEST_TIMEOUT" SERVER_CPUS="$SERVER_CPUS" LOADGEN_CPUS="$LOADGEN_CPUS" \
        bash "$PEER_BENCH/peer-companion.sh" | tee "$RD/peer-companion.out"
    s1="$(sample "$bpid")"
    # PostgreSQL CPU over the whole run / every r2b request (warm-ups included): Companion
    # uses no database, so all of it is the broker's.
    python3 - "$RD" "$s0" "$s1" <<'PY' | tee -a "$RD/summary.md"
import glob, json, os, sys
rd, a, b = sys.argv[1], [int(x) for x in sys.argv[2].split()], [int(x) for x in sys.argv[3].split()]
n = 0
for p in glob.glob(os.path.join(rd, "raw", "*r2b-*.json")):
    if "preflight" in p:
        continue
    d = json.load(open(p))
    n += sum((d.get("statusCodeDistribution") or {}).values())
tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
if n:
    print(f"\nr2b requests in this run (warm-ups included): {n:,}; broker CPU {(b[0]-a[0])*tick_us/n:.0f} µs/req, "
          f"PostgreSQL CPU {(b[1]-a[1])*tick_us/n:.0f} µs/req, s3s-fs CPU {(b[2]-a[2])*tick_us/n:.0f} µs/req "
          f"(all r2b targets together); broker RSS now {b[5]/1024:.1f} MiB, peak {b[6]/1024:.1f} MiB.")
PY
    echo "results: $RD"
}

# ------------------------------------------------------------------ scale-out
run_scale() {
    local i pids=() ports=() tok owner r
    write_env
    for ((i = 1; i <= SCALE_N; i++)); do
        start_broker "b$i" "$SCALE_SERVER_CPUS" 1
        pids+=("$BROKER_PID") ports+=("$BROKER_PORT")
    done
    local -a lpin=()
    [[ -n "$SCALE_LOADGEN_CPUS" ]] && lpin=(taskset -c "$SCALE_LOADGEN_CPUS")
    local conc_each=$(((SCALE_CONC + SCALE_N - 1) / SCALE_N))
    {
        echo "## Quota exactness: $SCALE_N brokers, one PostgreSQL"
        echo
        echo "Owner quota = $SCALE_K objects (admin PUT /v1/admin/owners/{owner}/quota); $SCALE_REQUESTS creates (\`POST /v1/uploads\`) sent to *each* broker at once (oha -n $SCALE_REQUESTS -c $conc_each per broker)."
        echo
        echo "| round | owner | 201 (oha) | 403 (oha) | other | reserved_objects | pending uploads rows | exact? |"
        echo "|---:|---|---:|---:|---:|---:|---:|---|"
    } >"$RD/scale.md"
    local all_ok=1
    for ((r = 1; r <= SCALE_ROUNDS; r++)); do
        owner="scale-owner-$r"
        local code
        code="$(curl -s -o "$RD/raw/quota-$r.json" -w '%{http_code}' -X PUT -H "authorization: Bearer $ADMIN_JWT" \
            -H 'content-type: application/json' -d "{\"quota_objects\":$SCALE_K,\"quota_bytes\":$HUGE}" \
            "http://127.0.0.1:${ports[0]}/v1/admin/owners/$owner/quota")"
        [[ "$code" == 200 ]] || die "set quota: HTTP $code $(cat "$RD/raw/quota-$r.json")"
        tok="$(services_token "$JWT_SECRET" "$owner")"
        local ps=() files=()
        for ((i = 0; i < SCALE_N; i++)); do
            scenario_args create-put "http://127.0.0.1:${ports[$i]}" "$tok"
            timeout --signal=INT 300 "${lpin[@]}" "$OHA" --no-tui -t "$REQUEST_TIMEOUT" --output-format json \
                -n "$SCALE_REQUESTS" -c "$conc_each" "${A[@]}" >"$RD/raw/quota-r$r-b$((i + 1)).json" &
            ps+=($!) files+=("$RD/raw/quota-r$r-b$((i + 1)).json")
        done
        for i in "${ps[@]}"; do wait "$i"; done
        local counts db pend
        counts="$(python3 - "${files[@]}" <<'PY'
import json, sys
c201 = c403 = other = 0
for p in sys.argv[1:]:
    d = json.load(open(p))
    for k, v in (d.get("statusCodeDistribution") or {}).items():
        if k == "201": c201 += v
        elif k == "403": c403 += v
        else: other += v
    other += sum((d.get("errorDistribution") or {}).values())
print(c201, c403, other)
PY
)"
        read -r c201 c403 cother <<<"$counts"
        db="$(psql_q "select reserved_objects from owners where owner = '$owner'")"
        pend="$(psql_q "select count(*) from uploads where owner = '$owner' and status = 'pending'")"
        local ok=no
        if [[ "$c201" == "$SCALE_K" && "$db" == "$SCALE_K" && "$pend" == "$SCALE_K" && "$cother" == 0 ]]; then ok=yes; else all_ok=0; fi
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$r" "$owner" "$c201" "$c403" "$cother" "$db" "$pend" "$ok" >>"$RD/scale.md"
        log "quota round $r: 201=$c201 403=$c403 other=$cother reserved_objects=$db pending=$pend exact=$ok"
    done
    # the 403s are quota_exceeded (one more, checked by body)
    local body
    body="$(curl -s -X POST -H "authorization: Bearer $tok" -H 'content-type: application/json' -d "$PUT_BODY" "http://127.0.0.1:${ports[0]}/v1/uploads")"
    grep -q '"quota_exceeded"' <<<"$body" || { all_ok=0; log "expected quota_exceeded, got: $body"; }
    echo >>"$RD/scale.md"
    echo "One more create after the rounds answers: \`$(head -c 160 <<<"$body")…\`" >>"$RD/scale.md"
    stop_brokers

    # throughput: configs brokers:workers, unpinned, create-put, SCALE_CONC connections in total
    echo "$RUNS_HEADER" >"$RD/runs.tsv"
    local cfg n w rep s0 s1 jsons comps
    for rep in $(seq 1 "$REPEATS"); do
        for cfg in $SCALE_CONFIGS; do
            n=${cfg%:*} w=${cfg#*:}
            pids=() ports=()
            for ((i = 1; i <= n; i++)); do
                start_broker "t$n-$w-$i" "$SCALE_SERVER_CPUS" "$w"
                pids+=("$BROKER_PID") ports+=("$BROKER_PORT")
            done
            local each=$(((SCALE_CONC + n - 1) / n)) ps=()
            jsons="" comps=""
            if ((WARMUP > 0)); then
                for ((i = 0; i < n; i++)); do
                    scenario_args "$SCALE_SCENARIO" "http://127.0.0.1:${ports[$i]}"
                    "${lpin[@]}" "$OHA" --no-tui -t "$REQUEST_TIMEOUT" --output-format json -w -z "${WARMUP}s" -c "$each" "${A[@]}" >/dev/null &
                    ps+=($!)
                done
                for i in "${ps[@]}"; do wait "$i"; done
                ps=()
            fi
            s0="$(sample "${pids[@]}")"
            for ((i = 0; i < n; i++)); do
                local f="raw/scale-${n}x${w}w-r$rep-b$((i + 1)).json"
                scenario_args "$SCALE_SCENARIO" "http://127.0.0.1:${ports[$i]}"
                timeout --signal=INT --kill-after=10 $((DURATION + 60)) "${lpin[@]}" "$OHA" --no-tui -t "$REQUEST_TIMEOUT" \
                    --output-format json -w -z "${DURATION}s" -c "$each" "${A[@]}" >"$RD/$f" &
                ps+=($!)
                jsons+="${jsons:+,}$f" comps+="${comps:+,}b$((i + 1))(c=$each)"
            done
            for i in "${ps[@]}"; do wait "$i"; done
            s1="$(sample "${pids[@]}")"
            record "$SCALE_SCENARIO ${n} broker(s) x ${w} worker(s)" "$SCALE_CONC" "$rep" "$jsons" "$s0" "$s1" "$comps"
            log "scale ${n}x${w}w rep=$rep: $(python3 - "$RD" "$jsons" <<'PY'
import json, os, sys
rps = 0
for j in sys.argv[2].split(","):
    rps += json.load(open(os.path.join(sys.argv[1], j)))["summary"]["requestsPerSec"]
print(f"{rps:.0f} req/s in total")
PY
)"
            stop_brokers
        done
    done
    {
        echo "# r2-broker scale-out — $(date -u +%FT%TZ)"
        echo
        sed 's/^/    /' "$RD/env.tsv"
        echo
        cat "$RD/scale.md"
        echo
        echo "## Throughput: $SCALE_SCENARIO, $SCALE_CONC connections in total split over the brokers, everything unpinned"
        echo
        echo "(broker CPU = all brokers together; RSS column = sum of the brokers' RSS)"
        echo
        python3 "$R2B_PY" summarize "$RD"
    } >"$RD/summary.md"
    echo
    cat "$RD/summary.md"
    echo
    echo "results: $RD"
    ((all_ok)) || die "quota was NOT exact in every round (see $RD/scale.md)"
}

case "$MODE" in
matrix) run_matrix ;;
companion) run_companion ;;
scale) run_scale ;;
esac

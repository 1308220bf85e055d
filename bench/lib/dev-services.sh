# shellcheck shell=bash
# PostgreSQL and the S3 store for the benchmarks, from `r2-broker dev` (the same embedded
# store and private cluster the tests and developers use). The benchmarked brokers are
# separate `r2-broker serve` processes pointed at them; the dev process's own broker sits
# idle (no reaper). Source after defining log() and die(), then:
#
#   services_start BIN            # sets SVC_PID, S3_ENDPOINT_URL, S3_KEY, S3_SECRET,
#                                 #   PG_PORT, PM_PID (the postmaster), PG_VERSION, SVC_DIR
#   services_create_db NAME       # a database (with the bench's commit settings), prints its URL
#   services_bucket NAME          # a bucket (a folder in the store's root)
#   services_token SECRET OWNER [--admin]   # an HS256 token (`r2-broker dev token`)
#   free_port
#   services_stop                 # from the caller's EXIT trap; idempotent
#
# Everything lives in a temp dir of mode 0755 under /tmp, deleted by services_stop: as root
# the cluster runs as `postgres`, which must reach it (else `dev` would put it under /var/tmp,
# outside what we delete).

SVC_PID="" SVC_DIR="" SVC_BIN=""

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# `env` arguments that keep the caller's settings (DATABASE_URL, S3_*, JWT_*…) from `dev`.
svc_unset() { compgen -e | grep -E '^(DATABASE_URL$|BROKER_|S3_|JWT_)' | sed 's/^/-u\n/' || true; }

services_start() {
    SVC_BIN=$1
    SVC_DIR=$(mktemp -d /tmp/r2b-bench-services.XXXXXX)
    chmod 755 "$SVC_DIR"
    local -a unset
    mapfile -t unset < <(svc_unset)
    env "${unset[@]}" BROKER_LISTEN=127.0.0.1:0 BROKER_REAPER_INTERVAL=0 BROKER_CONFIRM_INTERVAL=0 \
        RUST_LOG=warn setsid "$SVC_BIN" dev --data-dir "$SVC_DIR/data" --s3-port 0 \
        </dev/null >"$SVC_DIR/dev.log" 2>&1 &
    SVC_PID=$!
    local banner=""
    for _ in $(seq 1 600); do
        kill -0 "$SVC_PID" 2>/dev/null || { tail -n 30 "$SVC_DIR/dev.log" >&2; die "r2-broker dev exited"; }
        grep -q '^token: ' "$SVC_DIR/dev.log" && banner=1 && break
        sleep 0.1
    done
    [[ -n $banner ]] || die "r2-broker dev was not ready within 60 s (log: $SVC_DIR/dev.log)"
    S3_ENDPOINT_URL=$(sed -n 's/^  S3 store  *\(http:[^ ]*\).*/\1/p' "$SVC_DIR/dev.log" | head -n 1)
    PG_PORT=$(sed -n 's|^  PostgreSQL  *postgres://[^@]*@127.0.0.1:\([0-9]*\)/.*|\1|p' "$SVC_DIR/dev.log" | head -n 1)
    [[ -n $S3_ENDPOINT_URL && -n $PG_PORT ]] || die "no store or PostgreSQL in the banner ($SVC_DIR/dev.log)"
    # shellcheck disable=SC2034 # for the caller
    read -r S3_KEY S3_SECRET < <(python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
print(d["s3_access_key_id"], d["s3_secret_access_key"])' "$SVC_DIR/data/dev.json")
    # The postmaster is the dev process's only `postgres` child.
    PM_PID=$(ps -o pid=,comm= --ppid "$SVC_PID" | awk '$2 == "postgres" { print $1; exit }')
    [[ -n $PM_PID ]] || die "no postmaster under r2-broker dev (pid $SVC_PID)"
    PG_VERSION=$(tr '\0' ' ' <"/proc/$PM_PID/cmdline" | awk '{ print $1 }')
    PG_VERSION="$("$PG_VERSION" --version 2>/dev/null || echo '?')"
    log "services: r2-broker dev pid $SVC_PID, store $S3_ENDPOINT_URL, PostgreSQL 127.0.0.1:$PG_PORT (postmaster $PM_PID)"
}

PSQL=""
svc_psql() {
    if [[ -z $PSQL ]]; then
        PSQL=$(command -v psql || compgen -G '/usr/lib/postgresql/*/bin/psql' | sort -V | tail -n 1) || die "psql not found"
    fi
    "$PSQL" -h 127.0.0.1 -p "$PG_PORT" -U postgres -XAtq -v ON_ERROR_STOP=1 "$@"
}

# The settings the benchmark figures were made with: commits wait for no WAL flush, no
# full-page writes (with the fsync=off of every dev cluster).
services_create_db() {
    svc_psql -d postgres -c "create database $1" \
        -c "alter system set synchronous_commit = off" -c "alter system set full_page_writes = off" \
        -c "select pg_reload_conf()" >/dev/null
    echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"
}

services_bucket() { mkdir -p "$SVC_DIR/data/s3/$1"; }

services_token() {
    local secret=$1 owner=$2
    shift 2
    JWT_SECRET=$secret "$SVC_BIN" dev --data-dir "$SVC_DIR/data" token --owner "$owner" "$@"
}

services_stop() {
    if [[ -n $SVC_PID ]] && kill -0 "$SVC_PID" 2>/dev/null; then
        kill -TERM "$SVC_PID" 2>/dev/null
        for _ in $(seq 1 150); do kill -0 "$SVC_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SVC_PID" 2>/dev/null # its PostgreSQL dies with it (parent-death signal)
        wait "$SVC_PID" 2>/dev/null
    fi
    SVC_PID=""
    [[ -n $SVC_DIR ]] && rm -rf "$SVC_DIR"
    SVC_DIR=""
    return 0
}

# shellcheck shell=bash
# Throwaway PostgreSQL cluster + s3s-fs for r2-broker's tests (see TESTING.md).
#
# Source this file from a bash script running with `set -euo pipefail`, then:
#   svc_init                 # temp dir, traps-independent state
#   svc_ensure_tools         # install s3s-fs / postgresql when missing
#   svc_start_postgres       # or honour DATABASE_URL; exports R2B_TEST_DATABASE_URL
#   svc_start_s3             # exports R2B_TEST_S3_{ENDPOINT,ACCESS_KEY,SECRET_KEY,DATA_DIR}
#   svc_start_watchdog       # stops the services if the caller dies without cleaning up
#   ...
#   svc_cleanup              # idempotent; call it from the caller's EXIT trap
#
# Knobs: DATABASE_URL (use it instead of a private cluster), R2B_KEEP_TEST_DIRS=1,
# R2B_S3S_FS_VERSION (default 0.14.1), R2B_SVC_TIMEOUT (readiness wait, seconds, default 30).

SVC_S3S_FS_VERSION="${R2B_S3S_FS_VERSION:-0.14.1}"
SVC_TIMEOUT="${R2B_SVC_TIMEOUT:-30}"

SVC_DIR=""            # temp root (mode 0755, under /tmp)
SVC_PG_MODE=""        # "private" | "external"
SVC_PG_BIN=""         # dir holding initdb, postgres, pg_ctl, pg_isready
SVC_PG_DATA=""
SVC_PG_PORT=""
SVC_PG_SECS=""
SVC_PG_VERSION=""
SVC_S3_PID=""
SVC_S3_PORT=""
SVC_S3_SECS=""
SVC_WATCHDOG_PID=""
SVC_CLEANED=0

svc_log() { printf '[test.sh] %s\n' "$*" >&2; }
svc_die() { printf '[test.sh] error: %s\n' "$*" >&2; exit 1; }

svc_is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Current time in seconds with decimals.
svc_now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
svc_elapsed() { awk -v a="$1" -v b="$(svc_now)" 'BEGIN { printf "%.1f", b - a }'; }

# Print the last lines of a log file, indented, to stderr.
svc_tail() {
    local file=$1 n=${2:-40}
    if [[ -f "$file" ]]; then
        printf '[test.sh] ---- last %s lines of %s ----\n' "$n" "$file" >&2
        tail -n "$n" "$file" | sed 's/^/    /' >&2 || true
        printf '[test.sh] ----\n' >&2
    else
        printf '[test.sh] (no log at %s)\n' "$file" >&2
    fi
}

# A free TCP port on 127.0.0.1 (the kernel picks it; tiny race until the server binds).
svc_free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    # Fallback without python3: a random high port nobody answers on.
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    svc_die "could not find a free port"
}

svc_random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# Run a command as the postgres OS user when we are root, directly otherwise.
# cwd is the temp dir: postgres cannot always enter the caller's cwd (e.g. /root).
svc_as_pg() {
    if svc_is_root; then
        (cd "$SVC_DIR" && runuser -u postgres -- "$@")
    else
        (cd "$SVC_DIR" && "$@")
    fi
}

svc_init() {
    # Under /tmp on purpose (not $TMPDIR): the postgres user must traverse every parent.
    SVC_DIR="$(mktemp -d /tmp/r2b-test.XXXXXX)"
    chmod 0755 "$SVC_DIR"
}

# ---------------------------------------------------------------------------------------
# Tools

svc_find_pg_bin() {
    local p d
    for p in initdb postgres; do
        if command -v "$p" >/dev/null 2>&1; then
            d="$(dirname "$(readlink -f "$(command -v "$p")")")"
            if [[ -x "$d/initdb" && -x "$d/postgres" && -x "$d/pg_ctl" ]]; then
                echo "$d"
                return 0
            fi
        fi
    done
    # Debian keeps them out of PATH; take the newest major version.
    while IFS= read -r d; do
        if [[ -x "$d/initdb" && -x "$d/postgres" && -x "$d/pg_ctl" ]]; then
            echo "$d"
            return 0
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k4,4 -rn)
    return 1
}

svc_ensure_cargo_path() {
    local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    if [[ -d "$cargo_bin" && ":$PATH:" != *":$cargo_bin:"* ]]; then
        export PATH="$cargo_bin:$PATH"
    fi
}

svc_ensure_s3s_fs() {
    svc_ensure_cargo_path
    local have=""
    if command -v s3s-fs >/dev/null 2>&1; then
        have="$(s3s-fs --version 2>/dev/null | awk '{print $2}')" || have=""
    fi
    if [[ "$have" == "$SVC_S3S_FS_VERSION" ]]; then
        return 0
    fi
    if [[ -n "$have" ]]; then
        svc_log "s3s-fs $have found, need $SVC_S3S_FS_VERSION: reinstalling (takes a few minutes)"
    else
        svc_log "s3s-fs not found: installing s3s-fs@$SVC_S3S_FS_VERSION (takes a few minutes, once)"
    fi
    svc_run_child cargo install "s3s-fs@$SVC_S3S_FS_VERSION" --features binary --locked --force ||
        svc_die "cargo install s3s-fs@$SVC_S3S_FS_VERSION failed"
    svc_ensure_cargo_path
    hash -r
    have="$(s3s-fs --version 2>/dev/null | awk '{print $2}')" || have=""
    [[ "$have" == "$SVC_S3S_FS_VERSION" ]] ||
        svc_die "s3s-fs --version says '$have' after install (is ${CARGO_HOME:-$HOME/.cargo}/bin in PATH?)"
}

svc_ensure_postgres() {
    if SVC_PG_BIN="$(svc_find_pg_bin)"; then
        return 0
    fi
    if ! svc_is_root; then
        svc_die "PostgreSQL server binaries (initdb, postgres) not found; install the 'postgresql' package or set DATABASE_URL"
    fi
    svc_log "PostgreSQL not found: apt-get install postgresql"
    export DEBIAN_FRONTEND=noninteractive
    svc_run_child apt-get update -qq || svc_die "apt-get update failed"
    svc_run_child apt-get install -y -qq --no-install-recommends postgresql ||
        svc_die "apt-get install postgresql failed"
    SVC_PG_BIN="$(svc_find_pg_bin)" || svc_die "postgresql installed but initdb/postgres still not found"
}

svc_ensure_tools() {
    svc_ensure_s3s_fs
    if [[ -z "${DATABASE_URL:-}" ]]; then
        svc_ensure_postgres
    fi
}

# ---------------------------------------------------------------------------------------
# Child processes in their own session, so a signal to us (or Ctrl-C on the terminal)
# reaches our trap at once (bash runs traps only between foreground commands, but `wait`
# is interruptible) and the whole child process group can be stopped from the trap.

SVC_CHILD_PID=""

svc_run_child() {
    local rc=0
    setsid "$@" &
    SVC_CHILD_PID=$!
    # For the watchdog: stop the running command too if we are killed outright.
    [[ -n "$SVC_DIR" && -d "$SVC_DIR" ]] && echo "$SVC_CHILD_PID" >"$SVC_DIR/child.pid"
    wait "$SVC_CHILD_PID" || rc=$?
    SVC_CHILD_PID=""
    [[ -n "$SVC_DIR" ]] && rm -f "$SVC_DIR/child.pid"
    return "$rc"
}

svc_stop_child() {
    local pid=$SVC_CHILD_PID
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        svc_log "stopping the running command (pid $pid)"
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    SVC_CHILD_PID=""
}

# ---------------------------------------------------------------------------------------
# PostgreSQL

svc_start_postgres() {
    if [[ -n "${DATABASE_URL:-}" ]]; then
        SVC_PG_MODE="external"
        export R2B_TEST_DATABASE_URL="$DATABASE_URL"
        if command -v pg_isready >/dev/null 2>&1; then
            for _ in $(seq 1 "$((SVC_TIMEOUT * 2))"); do
                pg_isready -q -d "$DATABASE_URL" && return 0
                sleep 0.5
            done
            svc_die "DATABASE_URL given but the server does not answer (pg_isready -d \"\$DATABASE_URL\")"
        fi
        return 0
    fi

    SVC_PG_MODE="private"
    if svc_is_root && ! id postgres >/dev/null 2>&1; then
        svc_die "running as root but there is no 'postgres' OS user (initdb/postgres refuse to run as root)"
    fi

    local pgdir="$SVC_DIR/pg" t0 attempt
    mkdir -p "$pgdir/sock"
    chmod 0700 "$pgdir" "$pgdir/sock"
    if svc_is_root; then
        chown -R postgres:postgres "$pgdir"
    fi
    SVC_PG_DATA="$pgdir/data"
    t0="$(svc_now)"

    if ! svc_as_pg "$SVC_PG_BIN/initdb" --auth=trust -U postgres -D "$SVC_PG_DATA" \
        --encoding=UTF8 --locale=C --no-sync >"$SVC_DIR/initdb.log" 2>&1; then
        svc_tail "$SVC_DIR/initdb.log"
        svc_die "initdb failed"
    fi

    for attempt in 1 2 3; do
        SVC_PG_PORT="$(svc_free_port)"
        # pg_ctl starts the postmaster in its own session and returns (-w: once it is
        # ready or dead, -t: bounded); nothing of ours keeps supervising it.
        if svc_as_pg "$SVC_PG_BIN/pg_ctl" start -w -t "$SVC_TIMEOUT" -D "$SVC_PG_DATA" \
            -l "$pgdir/postgres.log" -o "-c listen_addresses=127.0.0.1 -c port=$SVC_PG_PORT \
-c unix_socket_directories=$pgdir/sock -c fsync=off -c synchronous_commit=off \
-c full_page_writes=off -c max_connections=400 -c shared_buffers=128MB" \
            >>"$SVC_DIR/pg_ctl.log" 2>&1; then
            break
        fi
        # (Started but not ready in time: postmaster.pid exists and the cleanup stops it.)
        if [[ $attempt -lt 3 ]] && [[ ! -f "$SVC_PG_DATA/postmaster.pid" ]] &&
            grep -q 'could not bind\|Address already in use' "$pgdir/postgres.log" 2>/dev/null; then
            svc_log "port $SVC_PG_PORT taken meanwhile; retrying with another port"
            continue
        fi
        svc_tail "$SVC_DIR/pg_ctl.log" 10
        svc_tail "$pgdir/postgres.log"
        svc_die "PostgreSQL did not start (pg_ctl start -w, ${SVC_TIMEOUT}s limit); see the logs above"
    done

    local ready=0
    for _ in $(seq 1 "$((SVC_TIMEOUT * 10))"); do
        if "$SVC_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$SVC_PG_PORT"; then
            ready=1
            break
        fi
        sleep 0.1
    done
    if [[ $ready -ne 1 ]]; then
        svc_tail "$pgdir/postgres.log"
        svc_die "PostgreSQL on 127.0.0.1:$SVC_PG_PORT not ready (pg_isready) within ${SVC_TIMEOUT}s"
    fi
    SVC_PG_SECS="$(svc_elapsed "$t0")"
    SVC_PG_VERSION="$("$SVC_PG_BIN/postgres" --version | awk '{print $3}')"
    export R2B_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$SVC_PG_PORT/postgres"
}

svc_postmaster_pid() {
    [[ -n "$SVC_PG_DATA" && -f "$SVC_PG_DATA/postmaster.pid" ]] || return 1
    head -n 1 "$SVC_PG_DATA/postmaster.pid"
}

svc_stop_postgres() {
    # Keyed on postmaster.pid: a signal may land right after pg_ctl started it.
    local pid
    pid="$(svc_postmaster_pid)" || return 0
    if ! svc_as_pg "$SVC_PG_BIN/pg_ctl" stop -D "$SVC_PG_DATA" -m fast -w -t 20 \
        >>"$SVC_DIR/pg_ctl.log" 2>&1; then
        # pg_ctl could not do it: signal the postmaster ourselves (fast, then immediate).
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -INT "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -QUIT "$pid" 2>/dev/null || true
            for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
}

# ---------------------------------------------------------------------------------------
# s3s-fs

svc_start_s3() {
    local s3dir="$SVC_DIR/s3" t0 attempt code
    mkdir -p "$s3dir/data"
    export R2B_TEST_S3_DATA_DIR="$s3dir/data"
    R2B_TEST_S3_ACCESS_KEY="AK$(svc_random_hex 9 | tr '[:lower:]' '[:upper:]')"
    R2B_TEST_S3_SECRET_KEY="$(svc_random_hex 20)"
    export R2B_TEST_S3_ACCESS_KEY R2B_TEST_S3_SECRET_KEY
    t0="$(svc_now)"

    for attempt in 1 2 3; do
        SVC_S3_PORT="$(svc_free_port)"
        # Own session: Ctrl-C on the terminal does not reach it; the cleanup stops it.
        setsid s3s-fs --host 127.0.0.1 --port "$SVC_S3_PORT" \
            --access-key "$R2B_TEST_S3_ACCESS_KEY" --secret-key "$R2B_TEST_S3_SECRET_KEY" \
            "$R2B_TEST_S3_DATA_DIR" </dev/null >>"$s3dir/s3s-fs.log" 2>&1 &
        SVC_S3_PID=$!
        for _ in $(seq 1 "$((SVC_TIMEOUT * 10))"); do
            code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$SVC_S3_PORT/" 2>/dev/null)" || true
            if [[ -n "$code" && "$code" != "000" ]]; then
                SVC_S3_SECS="$(svc_elapsed "$t0")"
                export R2B_TEST_S3_ENDPOINT="http://127.0.0.1:$SVC_S3_PORT"
                if [[ "$code" != "403" ]]; then
                    svc_log "warning: unsigned GET / on s3s-fs answered $code, expected 403 (are the keys enforced?)"
                fi
                return 0
            fi
            kill -0 "$SVC_S3_PID" 2>/dev/null || break
            sleep 0.1
        done
        if ! kill -0 "$SVC_S3_PID" 2>/dev/null; then
            wait "$SVC_S3_PID" 2>/dev/null || true
            SVC_S3_PID=""
            if [[ $attempt -lt 3 ]] && grep -qi 'address already in use\|AddrInUse' "$s3dir/s3s-fs.log"; then
                svc_log "port $SVC_S3_PORT taken meanwhile; retrying with another port"
                continue
            fi
            svc_tail "$s3dir/s3s-fs.log"
            svc_die "s3s-fs exited during startup"
        fi
        svc_tail "$s3dir/s3s-fs.log"
        svc_die "s3s-fs on 127.0.0.1:$SVC_S3_PORT did not answer within ${SVC_TIMEOUT}s"
    done
}

svc_stop_s3() {
    local pid=$SVC_S3_PID
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    SVC_S3_PID=""
}

# ---------------------------------------------------------------------------------------
# Watchdog: if this script is killed with SIGKILL (no trap runs), stop what we started.
# It lives in its own session so a process-group kill of the caller does not take it too.

svc_start_watchdog() {
    local pmpid=""
    pmpid="$(svc_postmaster_pid 2>/dev/null)" || pmpid=""
    # shellcheck disable=SC2016 # expanded by the inner bash
    setsid bash -c '
        parent=$1 pm=$2 s3=$3 dir=$4 keep=$5
        # Alive and not a zombie (orphans are reaped late on some machines).
        alive() { [ -r "/proc/$1/stat" ] && [ "$(sed "s/.*) //" "/proc/$1/stat" | cut -c1)" != Z ]; }
        while kill -0 "$parent" 2>/dev/null; do sleep 1; done
        if [ -f "$dir/child.pid" ]; then
            child=$(cat "$dir/child.pid")
            kill -TERM -- "-$child" 2>/dev/null
            for _ in $(seq 1 100); do alive "$child" || break; sleep 0.1; done
            kill -KILL -- "-$child" 2>/dev/null
        fi
        [ -n "$pm" ] && kill -INT "$pm" 2>/dev/null
        [ -n "$s3" ] && kill -TERM "$s3" 2>/dev/null
        for _ in $(seq 1 100); do
            up=0
            [ -n "$pm" ] && alive "$pm" && up=1
            [ -n "$s3" ] && alive "$s3" && up=1
            [ "$up" = 0 ] && break
            sleep 0.1
        done
        [ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null
        [ -n "$s3" ] && kill -KILL "$s3" 2>/dev/null
        [ "$keep" = 1 ] || rm -rf "$dir"
    ' r2b-watchdog "$$" "$pmpid" "$SVC_S3_PID" "$SVC_DIR" "${R2B_KEEP_TEST_DIRS:-0}" \
        </dev/null >/dev/null 2>&1 &
    SVC_WATCHDOG_PID=$!
}

svc_stop_watchdog() {
    [[ -n "$SVC_WATCHDOG_PID" ]] || return 0
    kill -TERM -- "-$SVC_WATCHDOG_PID" 2>/dev/null || kill -TERM "$SVC_WATCHDOG_PID" 2>/dev/null || true
    wait "$SVC_WATCHDOG_PID" 2>/dev/null || true
    SVC_WATCHDOG_PID=""
}

# ---------------------------------------------------------------------------------------

svc_summary() {
    local pg s3
    case "$SVC_PG_MODE" in
        private) pg="postgres $SVC_PG_VERSION on 127.0.0.1:$SVC_PG_PORT (private cluster, ${SVC_PG_SECS}s)" ;;
        external) pg="postgres from DATABASE_URL" ;;
        *) pg="no postgres" ;;
    esac
    s3="s3s-fs $SVC_S3S_FS_VERSION on 127.0.0.1:$SVC_S3_PORT (${SVC_S3_SECS}s)"
    svc_log "started: $pg; $s3; temp dir $SVC_DIR"
}

svc_cleanup() {
    [[ "$SVC_CLEANED" -eq 0 ]] || return 0
    SVC_CLEANED=1
    set +e
    svc_stop_child
    svc_stop_watchdog
    svc_stop_s3
    svc_stop_postgres
    if [[ -n "$SVC_DIR" && -d "$SVC_DIR" ]]; then
        if [[ "${R2B_KEEP_TEST_DIRS:-0}" == 1 ]]; then
            svc_log "kept test dirs (logs, data): $SVC_DIR"
        else
            rm -rf "$SVC_DIR"
        fi
    fi
}

#!/usr/bin/env bash
# Schemathesis (property-based API testing, pinned in scripts/schemathesis-requirements.txt)
# against the real binary and the spec it serves:
#
#   bash scripts/schemathesis.sh [BINARY]     # default target/debug/r2-broker (built by cargo)
#
# It builds nothing. It creates (once, then reuses) a venv with the pinned schemathesis in
# target/schemathesis-venv, starts `BINARY dev` in a fresh temporary data dir (embedded S3
# store and a private PostgreSQL: a new database every run), mints a user and an admin
# token, runs `schemathesis run http://127.0.0.1:PORT/openapi.yaml` once with each
# (settings, seed and bounds in schemathesis.toml), prints the case counts and stops the
# service. Exit status: 0 when both runs pass.
#
# Knobs: R2B_SCHEMATHESIS_SPEC=openapi.yaml tests that file (relative to the repository
# root; the running service is the base URL) instead of the served document, e.g. while
# editing the spec without a rebuild; R2B_SCHEMATHESIS_RUNS="user admin" (default) picks the runs; extra arguments
# after `--` go to both `schemathesis run` calls (e.g. `-- --include-operation-id
# createUpload --max-examples 200`); R2B_KEEP_TEST_DIRS=1 keeps the data dir (service
# log, schemathesis output); R2B_SCHEMATHESIS_VENV moves the venv. JUnit reports go to
# target/schemathesis-reports/. Schemathesis needs no network beyond 127.0.0.1 (4.x has
# no upload service); pip needs PyPI once, to create the venv.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

target=${CARGO_TARGET_DIR:-target}
bin=$target/debug/r2-broker
if [[ $# -gt 0 && $1 != -- ]]; then
    bin=$1
    shift
fi
[[ ${1:-} == -- ]] && shift
extra=("$@")

log() { printf '[schemathesis %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ -x $bin ]] || die "$bin is not an executable (build it first: cargo build --locked)"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# 1. The venv, (re)built when the pins change.
venv=${R2B_SCHEMATHESIS_VENV:-$target/schemathesis-venv}
[[ $venv == /* ]] || venv=$root/$venv
reqs=scripts/schemathesis-requirements.txt
want=$(sha256sum "$reqs" | cut -d' ' -f1)
mkdir -p "$(dirname "$venv")"
# One creator at a time (two test runs at once would delete each other's venv).
exec 9>"$venv.lock"
flock 9
if [[ "$(cat "$venv/.r2b-requirements.sha256" 2>/dev/null)" != "$want" || ! -x $venv/bin/schemathesis ]]; then
    command -v python3 >/dev/null 2>&1 || die "python3 not found"
    log "creating $venv with the pins in $reqs"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$reqs" ||
        die "pip install -r $reqs failed"
    "$venv/bin/python" -m pip check >/dev/null || die "pip check failed in $venv"
    echo "$want" >"$venv/.r2b-requirements.sha256"
fi
flock -u 9
log "$("$venv/bin/schemathesis" --version 2>&1 | head -n1) in $venv"

# 2. The service, in a fresh data dir (a new private PostgreSQL database every run); stopped
# on any exit by scripts/lib/dev-broker.sh, which also keeps the caller's BROKER_*, S3_*,
# JWT_* and DATABASE_URL away from it.
T0=$SECONDS
# shellcheck source=scripts/lib/dev-broker.sh
source scripts/lib/dev-broker.sh
dev_broker_setup r2b-schemathesis
dir=$DEV_TMP
dev_broker_start "$bin" "$root/scripts/schemathesis-profiles.toml" 60 BROKER_LOG_FORMAT=text
api=$DEV_API
user_token=$(dev_broker_token schemathesis-user)
admin_token=$(dev_broker_token schemathesis-admin --admin)

# 3. The runs.
spec=${R2B_SCHEMATHESIS_SPEC:-}
if [[ -n $spec ]]; then
    location=(--url "$api" -- "$(cd "$(dirname "$spec")" && pwd)/$(basename "$spec")")
    log "testing the file $spec against $api"
else
    location=(-- "$api/openapi.yaml")
fi
# JUnit reports, overwritten each run (target/ is ignored by git).
report=$target/schemathesis-reports
[[ $report == /* ]] || report=$root/$report
mkdir -p "$report"
color=()
[[ -t 1 ]] || color=(--no-color)
summary=()
total=0
rc=0
for run in ${R2B_SCHEMATHESIS_RUNS:-user admin}; do
    case $run in
        user) token=$user_token ;;
        admin) token=$admin_token ;;
        *) die "unknown run $run in R2B_SCHEMATHESIS_RUNS (user, admin)" ;;
    esac
    log "run '$run': schemathesis run --config-file schemathesis.toml -H 'Authorization: Bearer <$run token>' ${extra[*]}"
    t0=$(date +%s)
    out=$dir/schemathesis-$run.txt
    set +e
    HYPOTHESIS_STORAGE_DIRECTORY=$dir/hypothesis "$venv/bin/schemathesis" "${color[@]}" --config-file schemathesis.toml run \
        -H "Authorization: Bearer $token" --report junit --report-junit-path "$report/$run.junit.xml" \
        "${extra[@]}" "${location[@]}" 2>&1 | tee "$out"
    code=${PIPESTATUS[0]}
    set -e
    secs=$(($(date +%s) - t0))
    # The line after the summary's "Test cases:", e.g. "1798 generated, 1798 passed".
    cases=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -A1 -E '^ *Test cases:' | sed -n 2p | sed -E 's/^ +//')
    summary+=("$run: ${cases:-no case count found} (${secs}s, exit $code)")
    total=$((total + $(grep -oE '^[0-9]+' <<<"${cases:-0}" || echo 0)))
    [[ $code -eq 0 ]] || rc=$code
done

for line in "${summary[@]}"; do log "$line"; done
log "$total test cases in all; $([[ $rc -eq 0 ]] && echo "0 failures" || echo "FAILED (exit $rc)"); JUnit reports in $report"
exit "$rc"

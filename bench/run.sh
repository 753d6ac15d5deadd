#!/usr/bin/env bash
# `just bench`: Forklift against Express, Next.js, BullMQ, sharp, pandas and polars on
# this machine. Builds the release binaries and the peers, starts PostgreSQL and Redis,
# then each system in turn on loopback (Forklift unified, Forklift extracted, Express +
# BullMQ, Next.js), runs the scenarios of bench/README.md against it, stops it, and
# finally writes bench/results/<YYYY-MM-DD>.md and .svg. Everything it starts is
# stopped on exit, Ctrl-C included.
#
# Usage: bench/run.sh [csv-megabytes]     (S9's CSV, default 1024)
# Settings (environment): BENCH_DURATION (s per HTTP/gRPC load run, default 10),
# BENCH_CONNECTIONS (50), BENCH_S5_JOBS (10000), BENCH_COLD_RUNS (5), THUMB_IMAGES (20),
# BENCH_ONLY (comma-separated sections: unified, extracted, express, bullmq, next,
# thumbnails, csv, redis; default all), BENCH_VENV (the Python venv for pandas/polars),
# BENCH_TARGET_DIR (target dir of bench/grpc-load), BENCH_KEEP_LOGS (where logs are
# copied at the end, default /tmp/forklift-bench-logs). Honours CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
csv_mb="${1:-1024}"
duration="${BENCH_DURATION:-10}"
conns="${BENCH_CONNECTIONS:-50}"
s5_jobs="${BENCH_S5_JOBS:-10000}"
cold_runs="${BENCH_COLD_RUNS:-5}"
images="${THUMB_IMAGES:-20}"
only="${BENCH_ONLY:-unified,extracted,express,bullmq,next,thumbnails,csv,redis}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/forklift"
venv="${BENCH_VENV:-$cache/bench-venv}"
target="${CARGO_TARGET_DIR:-$root/target}"
bench_target="${BENCH_TARGET_DIR:-$cache/target-bench}"
keep_logs="${BENCH_KEEP_LOGS:-/var/tmp/forklift-bench-logs}"
cores="$(nproc)"
day="$(date +%F)"
run_started=$(date +%s)

# Not under /tmp: other sessions on a shared machine sweep stale test directories there.
work="$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/forklift-bench.XXXXXX")"
chmod 755 "$work"
logs="$work/logs"
mkdir -p "$logs"
export BENCH_RESULTS="$work/results.jsonl"
: >"$BENCH_RESULTS"
meta="$work/meta.json"
echo '{}' >"$meta"

say() { printf '\n== %s\n' "$*" >&2; }
note() { printf '   %s\n' "$*" >&2; }
want() { [[ ",$only," == *",$1,"* ]]; }
rec() { python3 bench/lib/rec.py "$@"; }
# Adds a key to the run's metadata (versions, settings).
meta() { jq --arg k "$1" --arg v "$2" '.[$k] = $v' "$meta" >"$meta.new" && mv "$meta.new" "$meta"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---- processes: everything started here is stopped on exit ----
pids=()
pg_data=""
pg_pid=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# Starts a command in the background, its output in $logs/<name>.log; sets $last_pid.
start() {
    local name="$1"
    shift
    "$@" >>"$logs/$name.log" 2>&1 &
    last_pid=$!
    pids+=("$last_pid")
}

# Stops one process we started (SIGTERM, SIGKILL after 15 s) and reaps it.
stop() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$? i
    trap - EXIT INT TERM
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop "${pids[i]}"
    done
    # GNU time and other helpers run in the foreground; anything left is a child of ours.
    for pid in $(jobs -p); do
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    if [[ -n "$pg_data" && -f "$pg_data/postmaster.pid" ]]; then
        as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    # Should its directory have gone, the postmaster is stopped by its pid (fast shutdown).
    if [[ -n "$pg_pid" ]] && kill -0 "$pg_pid" 2>/dev/null; then
        kill -INT "$pg_pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$keep_logs"
    cp -r "$logs" "$keep_logs" 2>/dev/null || true
    rm -rf "$work"
    if [[ $status != 0 ]]; then
        echo "bench failed (exit $status); logs are in $keep_logs" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until URL answers 200 (or PID exits).
wait_http() {
    local url="$1" pid="$2" i
    for ((i = 0; i < 600; i++)); do
        curl -sf -o /dev/null "$url" && return 0
        kill -0 "$pid" 2>/dev/null || { echo "process $pid exited; see $logs" >&2; return 1; }
        sleep 0.1
    done
    echo "$url did not answer within 60 s" >&2
    return 1
}

# ---- tools ----
say "tools"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v jq >/dev/null || missing+=(jq)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v taskset >/dev/null || missing+=(util-linux)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[[ -n "$pg_bin" ]] || missing+=(postgresql)
if ((${#missing[@]})); then
    note "installing from Debian: ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
command -v node >/dev/null || { echo "the peers need Node.js 20.9 or newer" >&2; exit 1; }
export PSQL="$pg_bin/psql"

# ---- builds ----
say "building release binaries"
cargo build --release --quiet -p forklift-web -p forklift-jobs
cargo build --release --quiet -p forklift-kinds -p forklift-profile --examples
CARGO_TARGET_DIR="$bench_target" cargo build --release --quiet --manifest-path bench/grpc-load/Cargo.toml
web_bin="$target/release/forklift-web"
jobs_bin="$target/release/forklift-jobs"
examples="$target/release/examples"
grpc_load="$bench_target/release/grpc-load"
photos_bin="$bench_target/release/photos"

say "installing the peers (npm, PyPI)"
for peer in express next sharp; do
    # `npm install` with the lock file (npm 11's `npm ci` rejects lock files that lack
    # other platforms' optional packages, as msgpackr's and sharp's are here).
    (cd "bench/peers/$peer" && npm install --no-audit --no-fund --loglevel=error >"$logs/npm-$peer.log" 2>&1) \
        || { cat "$logs/npm-$peer.log" >&2; exit 1; }
done
if want next; then
    note "next build"
    (cd bench/peers/next && NEXT_TELEMETRY_DISABLED=1 node node_modules/next/dist/bin/next build >"$logs/next-build.log" 2>&1) \
        || { tail -40 "$logs/next-build.log" >&2; exit 1; }
fi
if want csv; then
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r bench/peers/pandas/requirements.txt >"$logs/pip.log" 2>&1 \
        || { cat "$logs/pip.log" >&2; exit 1; }
fi

meta machine "$cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) memory"
meta rustc "$(rustc -V)"
meta node "$(node --version)"
meta postgres "$("$pg_bin/postgres" --version)"
meta redis "$(redis-server --version | grep -o 'v=[0-9.]*' | cut -c3-)"
meta wrk "$(wrk --version 2>&1 | head -1 | cut -d' ' -f2)"
pkgver() { node -p "require('./bench/peers/$1/node_modules/$2/package.json').version"; }
meta express "$(pkgver express express)"
meta bullmq "$(pkgver express bullmq)"
meta pg "$(pkgver express pg)"
meta next "$(pkgver next next)"
meta react "$(pkgver next react)"
meta sharp "$(pkgver sharp sharp)"
meta settings "HTTP/gRPC load: ${duration} s per run after a 2 s warm-up, $conns connections (wrk -t$cores); S5: $s5_jobs jobs, 50 submitters, 50 worker slots; S7: median of $cold_runs"

# ---- PostgreSQL and Redis, shared by Forklift extracted and the peers ----
say "starting PostgreSQL and Redis"
pg_port=$(free_port)
redis_port=$(free_port)
pg_data="$work/pg/data"
mkdir -p "$pg_data"
touch "$logs/postgres.log"
# As root, PostgreSQL runs as the postgres user: its data, socket directory and log.
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work/pg" "$logs/postgres.log"
as_pg "$pg_bin/initdb" -D "$pg_data" -U bench --auth=trust -E UTF8 --no-sync >"$logs/initdb.log" 2>&1
# Production settings, except that a commit does not wait for its WAL flush: the same
# about-one-second durability window as Redis' appendfsync everysec (and SQLite's
# synchronous=NORMAL that Forklift unified uses).
as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$logs/postgres.log" -w -o "-p $pg_port -k $work/pg \
    -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB \
    -c synchronous_commit=off" start >/dev/null
pg_pid=$(head -1 "$pg_data/postmaster.pid")
"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U bench forklift
"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U bench peers
forklift_db="postgres://bench@127.0.0.1:$pg_port/forklift"
peers_db="postgres://bench@127.0.0.1:$pg_port/peers"
mkdir -p "$work/redis"
start redis redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction --save ''
redis_pid=$last_pid
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do
    kill -0 "$redis_pid" 2>/dev/null || { cat "$logs/redis.log" >&2; exit 1; }
    sleep 0.1
done
redis_url="redis://127.0.0.1:$redis_port/"

# ---- load generators ----
# http_load <scenario> <system> <url> [extra wrk args...]: a 2 s warm-up, then the
# measured run; records req/s, p50, p99. WRK_BODY in the environment makes it a POST.
http_load() {
    local scenario="$1" system="$2" url="$3"
    shift 3
    wrk -t"$cores" -c"$conns" -d2s --timeout 10s -s bench/lib/wrk.lua "$@" "$url" >/dev/null 2>&1 || true
    local out mark steal try best="" best_steal=101
    # A run the hypervisor took more than 10 % of the CPUs from is repeated (3 tries at
    # most); the least disturbed one is kept.
    for ((try = 1; try <= 3; try++)); do
        mark=$(cpu_mark)
        out=$(wrk -t"$cores" -c"$conns" -d"${duration}s" --timeout 10s -s bench/lib/wrk.lua "$@" "$url" | tail -1)
        steal=$(steal_since "$mark")
        if ((steal < best_steal)); then best=$out best_steal=$steal; fi
        ((steal > 10)) || break
        note "steal $steal% during this run: measuring again"
    done
    out=$best steal=$best_steal
    echo "$out" >>"$logs/wrk.jsonl"
    local n s bad
    n=$(jq .requests <<<"$out")
    s=$(jq .seconds <<<"$out")
    bad=$(jq '.non2xx3xx + .socket_errors' <<<"$out")
    rec scenario="$scenario" system="$system" variant="${variant:-}" unit=req/s \
        throughput="$(jq -n "$n / $s * 10 | round / 10")" \
        p50_ms="$(jq '.p50_us / 1000' <<<"$out")" p99_ms="$(jq '.p99_us / 1000' <<<"$out")" \
        requests="$n" errors="$bad" steal_pct="$steal"
    if [[ "$bad" != 0 ]]; then note "WARNING: $bad failed requests in $scenario $system"; fi
}

# grpc_load <scenario> <system> <addr> <token>: SubmitJob for BENCH_DURATION seconds.
grpc_load() {
    local scenario="$1" system="$2" addr="$3" token="$4"
    "$grpc_load" --url "http://$addr" --token "$token" --concurrency "$conns" --duration 2 >/dev/null
    local out mark steal try best="" best_steal=101
    for ((try = 1; try <= 3; try++)); do
        mark=$(cpu_mark)
        out=$("$grpc_load" --url "http://$addr" --token "$token" --concurrency "$conns" --duration "$duration")
        steal=$(steal_since "$mark")
        if ((steal < best_steal)); then best=$out best_steal=$steal; fi
        ((steal > 10)) || break
        note "steal $steal% during this run: measuring again"
    done
    out=$best steal=$best_steal
    echo "$out" >>"$logs/grpc-load.jsonl"
    rec scenario="$scenario" system="$system" variant=gRPC unit=req/s throughput="$(jq .rps <<<"$out")" \
        p50_ms="$(jq .p50_ms <<<"$out")" p99_ms="$(jq .p99_ms <<<"$out")" \
        requests="$(jq .requests <<<"$out")" errors="$(jq .errors <<<"$out")" steal_pct="$steal"
    [[ "$(jq .errors <<<"$out")" == 0 ]] || note "WARNING: gRPC errors: $(jq -r .first_error <<<"$out")"
}

# check <what> <expected substring count> <pattern> <curl args...>: one request must
# answer 200 with the pattern present that many times (20 jobs, not an error page).
check() {
    local what="$1" want="$2" pattern="$3"
    shift 3
    local body code
    body=$(curl -s -w '\n%{http_code}' "$@")
    code=${body##*$'\n'}
    local n
    n=$(grep -o "$pattern" <<<"$body" | wc -l)
    if [[ "$code" != 200 || "$n" -lt "$want" ]]; then
        echo "$what: expected 200 with $want × '$pattern', got $code with $n" >&2
        head -c 2000 <<<"$body" >&2
        exit 1
    fi
}

# http_scenarios <system> <base url> <token> <cookie header>: S1–S3.
http_scenarios() {
    local system="$1" base="$2" token="$3" cookie="$4"
    check "$system S2" 20 '"kind"' -H "Authorization: Bearer $token" "$base/api/v1/jobs?limit=20"
    check "$system S3" 20 'data-job-id' -H "Cookie: $cookie" "$base/dashboard"
    note "S1 GET /healthz"
    variant="" http_load S1 "$system" "$base/healthz"
    note "S2 GET /api/v1/jobs?limit=20"
    variant="" http_load S2 "$system" "$base/api/v1/jobs?limit=20" -H "Authorization: Bearer $token"
    note "S3 GET /dashboard"
    variant="" http_load S3 "$system" "$base/dashboard" -H "Cookie: $cookie"
}

# rss_watch <pid>: starts the peak-memory sampler; rss_done prints its figure.
rss_watch() {
    rss_file="$work/rss-$1.json"
    python3 bench/lib/rss.py "$1" "$rss_file" &
    rss_pid=$!
}
# Sets $rss (MiB). Not in a $(…) subshell: only this shell can wait for the sampler.
rss_done() {
    kill -TERM "$rss_pid" 2>/dev/null || true
    wait "$rss_pid" 2>/dev/null || true
    # One process: the kernel's own high-water mark; several: the sampled tree total.
    rss=$(jq 'if .processes > 1 then ([.peak_tree_mib, .hwm_root_mib] | max) else .hwm_root_mib end' "$rss_file")
    rss_procs=$(jq .processes "$rss_file")
}

# Runs a command under GNU time; its stdout goes to $work/stdout, peak RSS (MiB) to $peak.
measure() {
    local mark
    mark=$(cpu_mark)
    /usr/bin/time -v -o "$work/time" "$@" >"$work/stdout" 2>>"$logs/measure.log"
    steal=$(steal_since "$mark")
    peak=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$work/time")
}

# CPU time the hypervisor gave to other guests (steal) during a measurement, in % of
# the CPUs' time: a shared VM's noise, recorded with each load run.
cpu_mark() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $9 }' /proc/stat; }
steal_since() {
    echo "$1 $(cpu_mark)" | awk '{ t = $3 - $1; if (t <= 0) t = 1; printf "%.0f", 100 * ($4 - $2) / t }'
}

noop_body='{"kind":"debug.noop","params":{},"input_file_ids":[]}'

# The machine may be shared: how busy its CPUs are in the second before each section,
# while nothing of ours runs (PostgreSQL and Redis idle), is kept with the results.
loads=()
section_load() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    local busy
    busy=$(echo "$a $b" | awk '{ t = ($3 + $4) - ($1 + $2); if (t <= 0) t = 1; printf "%.0f", 100 * ($3 - $1) / t }')
    loads+=("$1 $busy%")
    note "CPUs busy with other work before this section: $busy%"
}

# ---- Forklift unified ----
if want unified; then
    say "Forklift unified (SQLite, in-process queue)"
    section_load unified
    data="$work/unified"
    mkdir -p "$data"
    http=$(free_port)
    grpc=$(free_port)
    unified_args=(--data-dir "$data" --debug-kinds true --submit-per-minute 0 --queues debug=50
        --shutdown-grace 5s)
    start forklift-unified "$web_bin" --http-addr "127.0.0.1:$http" --grpc-addr "127.0.0.1:$grpc" "${unified_args[@]}"
    pid=$last_pid
    rss_watch "$pid"
    wait_http "http://127.0.0.1:$http/healthz" "$pid"
    creds=$(python3 bench/lib/forklift_setup.py "http://127.0.0.1:$http" 25)
    token=$(jq -r .token <<<"$creds")
    session=$(jq -r .session <<<"$creds")
    http_scenarios "Forklift unified" "http://127.0.0.1:$http" "$token" "forklift_session=$session"
    rss_done
    rec scenario=S8 system="Forklift unified" unit=MiB rss_mib="$rss"
    note "S4 POST /api/v1/jobs"
    WRK_BODY="$noop_body" variant=HTTP http_load S4 "Forklift unified" "http://127.0.0.1:$http/api/v1/jobs" \
        -H "Authorization: Bearer $token"
    note "draining the HTTP submissions' jobs, so that the gRPC run starts on an empty queue"
    python3 bench/lib/jobs_db.py drain "sqlite:$data/forklift.db" 300
    note "S4 gRPC SubmitJob"
    grpc_load S4 "Forklift unified" "127.0.0.1:$grpc" "$token"
    note "draining the S4 jobs"
    python3 bench/lib/jobs_db.py drain "sqlite:$data/forklift.db" 300
    note "S5 $s5_jobs debug.noop jobs"
    since=$(date +%s%3N)
    "$grpc_load" --url "http://127.0.0.1:$grpc" --token "$token" --concurrency 50 --total "$s5_jobs" >"$work/s5-submit.json"
    submitted=$(jq .requests "$work/s5-submit.json")
    [[ "$(jq .errors "$work/s5-submit.json")" == 0 ]] || note "WARNING: S5 submit errors: $(jq -r .first_error "$work/s5-submit.json")"
    out=$(python3 bench/lib/jobs_db.py stats "sqlite:$data/forklift.db" "$since" "$submitted" 300)
    rec scenario=S5 system="Forklift unified" unit=jobs/s throughput="$(jq .jobs_per_s <<<"$out")" \
        p50_ms="$(jq .wait_p50_ms <<<"$out")" p99_ms="$(jq .wait_p99_ms <<<"$out")" \
        errors="$(jq .failed <<<"$out")" note="submitted over gRPC at $(jq .rps "$work/s5-submit.json") jobs/s"
    stop "$pid"
    note "S7 cold start (existing data directory)"
    out=$(python3 bench/lib/coldstart.py "$cold_runs" "http://127.0.0.1:{port}/healthz" -- \
        "$web_bin" --http-addr "127.0.0.1:{port}" --grpc-addr "127.0.0.1:{port2}" "${unified_args[@]}")
    rec scenario=S7 system="Forklift unified" unit=ms throughput="$(jq .median_ms <<<"$out")" \
        note="runs: $(jq -c .runs_ms <<<"$out")"
    # Reference: the same without ffmpeg/ffprobe, so that startup runs no video probe.
    out=$(FORKLIFT_FFMPEG=/nonexistent/ffmpeg FORKLIFT_FFPROBE=/nonexistent/ffprobe \
        python3 bench/lib/coldstart.py "$cold_runs" "http://127.0.0.1:{port}/healthz" -- \
        "$web_bin" --http-addr "127.0.0.1:{port}" --grpc-addr "127.0.0.1:{port2}" "${unified_args[@]}")
    rec scenario=S7 system="Forklift unified, video kind off" unit=ms throughput="$(jq .median_ms <<<"$out")" \
        note="reference: FORKLIFT_FFMPEG/FFPROBE unset to a missing path, so no ffmpeg probe at start; runs: $(jq -c .runs_ms <<<"$out")"
fi

# ---- Forklift extracted ----
if want extracted; then
    say "Forklift extracted (jobs API + worker + web, PostgreSQL, Redis)"
    section_load extracted
    redis-cli -p "$redis_port" flushall >/dev/null
    data="$work/extracted"
    mkdir -p "$data"
    export FORKLIFT_DATABASE_URL="$forklift_db" FORKLIFT_REDIS_URL="$redis_url" FORKLIFT_DATA_DIR="$data"
    # A data directory per process; files in one directory every process names by URL
    # (a volume they all mount).
    export FORKLIFT_STORAGE_URL="file://$data/files"
    export FORKLIFT_SERVICE_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    export FORKLIFT_DEBUG_KINDS=true FORKLIFT_SHUTDOWN_GRACE=5s
    api_grpc=$(free_port)
    api_http=$(free_port)
    worker_http=$(free_port)
    http=$(free_port)
    start jobs-api "$jobs_bin" --role api --data-dir "$data/jobs-api" --grpc-addr "127.0.0.1:$api_grpc" --http-addr "127.0.0.1:$api_http"
    api_pid=$last_pid
    wait_http "http://127.0.0.1:$api_http/healthz" "$api_pid"
    start jobs-worker "$jobs_bin" --role worker --data-dir "$data/jobs-worker" --http-addr "127.0.0.1:$worker_http" --queues debug=50
    worker_pid=$last_pid
    wait_http "http://127.0.0.1:$worker_http/healthz" "$worker_pid"
    web_args=(--jobs-url "http://127.0.0.1:$api_grpc" --submit-per-minute 0)
    start forklift-web "$web_bin" --data-dir "$data/web" --http-addr "127.0.0.1:$http" "${web_args[@]}"
    pid=$last_pid
    rss_watch "$pid"
    api_rss_file="$work/rss-api.json"
    python3 bench/lib/rss.py "$api_pid" "$api_rss_file" &
    api_rss_pid=$!
    wait_http "http://127.0.0.1:$http/healthz" "$pid"
    creds=$(python3 bench/lib/forklift_setup.py "http://127.0.0.1:$http" 25)
    token=$(jq -r .token <<<"$creds")
    session=$(jq -r .session <<<"$creds")
    http_scenarios "Forklift extracted" "http://127.0.0.1:$http" "$token" "forklift_session=$session"
    kill -TERM "$api_rss_pid"
    wait "$api_rss_pid" || true
    rss_done
    rec scenario=S8 system="Forklift extracted" unit=MiB rss_mib="$rss" \
        note="web process; the jobs API process peaked at $(jq .hwm_root_mib "$api_rss_file") MiB"
    note "S4 POST /api/v1/jobs"
    WRK_BODY="$noop_body" variant=HTTP http_load S4 "Forklift extracted" "http://127.0.0.1:$http/api/v1/jobs" \
        -H "Authorization: Bearer $token"
    note "draining the HTTP submissions' jobs, so that the gRPC run starts on an empty queue"
    python3 bench/lib/jobs_db.py drain "$forklift_db" 300
    note "S4 gRPC SubmitJob (jobs API)"
    grpc_load S4 "Forklift extracted" "127.0.0.1:$api_grpc" "$token"
    note "draining the S4 jobs"
    python3 bench/lib/jobs_db.py drain "$forklift_db" 300
    note "S5 $s5_jobs debug.noop jobs"
    since=$(date +%s%3N)
    "$grpc_load" --url "http://127.0.0.1:$api_grpc" --token "$token" --concurrency 50 --total "$s5_jobs" >"$work/s5-submit.json"
    submitted=$(jq .requests "$work/s5-submit.json")
    [[ "$(jq .errors "$work/s5-submit.json")" == 0 ]] || note "WARNING: S5 submit errors: $(jq -r .first_error "$work/s5-submit.json")"
    out=$(python3 bench/lib/jobs_db.py stats "$forklift_db" "$since" "$submitted" 300)
    rec scenario=S5 system="Forklift extracted" unit=jobs/s throughput="$(jq .jobs_per_s <<<"$out")" \
        p50_ms="$(jq .wait_p50_ms <<<"$out")" p99_ms="$(jq .wait_p99_ms <<<"$out")" \
        errors="$(jq .failed <<<"$out")" note="submitted over gRPC at $(jq .rps "$work/s5-submit.json") jobs/s"
    stop "$pid"
    note "S7 cold start of the web process (jobs API running)"
    out=$(python3 bench/lib/coldstart.py "$cold_runs" "http://127.0.0.1:{port}/healthz" -- \
        "$web_bin" --http-addr "127.0.0.1:{port}" "${web_args[@]}")
    rec scenario=S7 system="Forklift extracted" unit=ms throughput="$(jq .median_ms <<<"$out")" \
        note="runs: $(jq -c .runs_ms <<<"$out")"
    stop "$worker_pid"
    stop "$api_pid"
    unset FORKLIFT_DATABASE_URL FORKLIFT_REDIS_URL FORKLIFT_DATA_DIR FORKLIFT_STORAGE_URL FORKLIFT_SERVICE_TOKEN \
        FORKLIFT_DEBUG_KINDS FORKLIFT_SHUTDOWN_GRACE
fi

# ---- the peers' database ----
if want express || want next || want bullmq; then
    export DATABASE_URL="$peers_db" REDIS_URL="$redis_url" NODE_ENV=production NEXT_TELEMETRY_DISABLED=1
    peer_creds=$(cd bench/peers/express && node seed.js 25)
    peer_token=$(jq -r .token <<<"$peer_creds")
    peer_session=$(jq -r .session <<<"$peer_creds")
    peer_user=$(jq -r .user_id <<<"$peer_creds")
fi

# ---- Express + BullMQ ----
if want express; then
    say "Express $(pkgver express express) + pg + BullMQ ($cores cluster workers)"
    section_load express
    redis-cli -p "$redis_port" flushall >/dev/null
    http=$(free_port)
    start express env -C bench/peers/express HTTP_ADDR="127.0.0.1:$http" node server.js
    pid=$last_pid
    rss_watch "$pid"
    start bullmq-worker env -C bench/peers/express node worker.js
    bq_pid=$last_pid
    wait_http "http://127.0.0.1:$http/healthz" "$pid"
    http_scenarios "Express" "http://127.0.0.1:$http" "$peer_token" "session=$peer_session"
    rss_done
    rec scenario=S8 system="Express" unit=MiB rss_mib="$rss" note="$rss_procs processes: $cores cluster workers and the primary (sampled sum)"
    note "S4 POST /api/v1/jobs (row + BullMQ add)"
    WRK_BODY="$noop_body" variant=HTTP http_load S4 "Express + BullMQ" "http://127.0.0.1:$http/api/v1/jobs" \
        -H "Authorization: Bearer $peer_token"
    stop "$pid"
    note "draining the S4 jobs"
    python3 bench/lib/jobs_db.py drain "$peers_db" 300
    stop "$bq_pid"
    note "S7 cold start"
    out=$(HTTP_ADDR="127.0.0.1:{port}" python3 bench/lib/coldstart.py "$cold_runs" "http://127.0.0.1:{port}/healthz" -- \
        env -C bench/peers/express node server.js)
    rec scenario=S7 system="Express" unit=ms throughput="$(jq .median_ms <<<"$out")" \
        note="runs: $(jq -c .runs_ms <<<"$out")"
fi

# ---- BullMQ: S5 ----
if want bullmq; then
    say "BullMQ $(pkgver express bullmq): S5"
    section_load bullmq
    for mode in pg bare; do
        redis-cli -p "$redis_port" flushall >/dev/null
        if [[ $mode == pg ]]; then
            system="Express + BullMQ"
            bare=0
        else
            system="BullMQ alone"
            bare=1
        fi
        log="bullmq-s5-$mode"
        start "$log" env -C bench/peers/express BENCH_EXPECT="$s5_jobs" BENCH_BARE="$bare" node worker.js
        wpid=$last_pid
        # The worker says when it is ready.
        for ((i = 0; i < 100; i++)); do
            grep -q 'bullmq worker ready' "$logs/$log.log" 2>/dev/null && break
            sleep 0.1
        done
        since=$(date +%s%3N)
        flag=""
        [[ $mode == bare ]] && flag="--bare"
        submit=$(cd bench/peers/express && node s5.js "$s5_jobs" 50 "$peer_user" $flag)
        for ((i = 0; i < 3000; i++)); do
            kill -0 "$wpid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$wpid" 2>/dev/null; then
            echo "the BullMQ worker did not finish $s5_jobs jobs within 300 s" >&2
            exit 1
        fi
        wait "$wpid" || true
        if [[ $mode == pg ]]; then
            out=$(python3 bench/lib/jobs_db.py stats "$peers_db" "$since" "$s5_jobs" 60)
            failed=$(jq .failed <<<"$out")
        else
            out=$(grep '^{' "$logs/$log.log" | tail -1)
            failed=0
        fi
        rec scenario=S5 system="$system" unit=jobs/s throughput="$(jq .jobs_per_s <<<"$out")" \
            p50_ms="$(jq .wait_p50_ms <<<"$out")" p99_ms="$(jq .wait_p99_ms <<<"$out")" errors="$failed" \
            note="enqueued at $(jq -n "$(jq .enqueued <<<"$submit") / $(jq .enqueue_seconds <<<"$submit") | round") jobs/s"
    done
fi

# ---- Next.js ----
if want next; then
    say "Next.js $(pkgver next next) (next start)"
    section_load next
    http=$(free_port)
    start next env -C bench/peers/next node node_modules/next/dist/bin/next start -H 127.0.0.1 -p "$http"
    pid=$last_pid
    rss_watch "$pid"
    wait_http "http://127.0.0.1:$http/healthz" "$pid"
    http_scenarios "Next.js" "http://127.0.0.1:$http" "$peer_token" "session=$peer_session"
    rss_done
    rec scenario=S8 system="Next.js" unit=MiB rss_mib="$rss" note="$rss_procs process(es) under next start"
    stop "$pid"
    note "S7 cold start"
    out=$(python3 bench/lib/coldstart.py "$cold_runs" "http://127.0.0.1:{port}/healthz" -- \
        env -C bench/peers/next node node_modules/next/dist/bin/next start -H 127.0.0.1 -p "{port}")
    rec scenario=S7 system="Next.js" unit=ms throughput="$(jq .median_ms <<<"$out")" \
        note="runs: $(jq -c .runs_ms <<<"$out")"
fi

# ---- the Redis ceiling ----
if want redis; then
    say "redis-benchmark (the physical limit beside S4 and S5)"
    redis-cli -p "$redis_port" flushall >/dev/null
    redis-benchmark -h 127.0.0.1 -p "$redis_port" -c 50 -n 200000 -t ping,set,lpush,zadd --csv \
        >"$work/redis.csv" 2>/dev/null
    while IFS=, read -r test rps _avg _min p50 _p95 p99 _max; do
        test=${test//\"/}
        [[ $test == test ]] && continue
        rec scenario=Redis system="redis-benchmark $test" unit=ops/s throughput="${rps//\"/}" \
            p50_ms="${p50//\"/}" p99_ms="${p99//\"/}" note="50 clients, no pipelining"
    done <"$work/redis.csv"
    redis-cli -p "$redis_port" flushall >/dev/null
fi

# ---- S6: thumbnails ----
if want thumbnails; then
    say "S6 thumbnails: $images photo-like 3000×2000 JPEGs"
    section_load thumbnails
    "$photos_bin" "$work/photos" "$images" >/dev/null
    # Forklift: the image.thumbnail kind's code path (DCT-scaled decoding), as bench/kinds.sh.
    for threads in 1 "$cores"; do
        if [[ $threads == 1 ]]; then pin=(taskset -c 0); label="1 core"; else pin=(); label="$cores cores"; fi
        measure "${pin[@]}" "$examples/thumbnail_bench" "$images" "$threads" scaled
        ips=$(grep '^| DCT' "$work/stdout" | cut -d'|' -f4 | tr -d ' ')
        rec scenario=S6 system=Forklift variant="$label" unit=images/s throughput="$ips" rss_mib="$peak" steal_pct="$steal"
        if [[ $threads == 1 ]]; then
            UV_THREADPOOL_SIZE=1 measure taskset -c 0 node bench/peers/sharp/thumbs.js "$work/photos" 1
        else
            measure node bench/peers/sharp/thumbs.js "$work/photos" "$cores"
        fi
        rec scenario=S6 system=sharp variant="$label" unit=images/s \
            throughput="$(jq '.images_per_s * 10 | round / 10' "$work/stdout")" rss_mib="$peak" steal_pct="$steal" \
            note="libvips $(jq -r .vips "$work/stdout")"
    done
    UV_THREADPOOL_SIZE=1 measure taskset -c 0 node bench/peers/sharp/thumbs.js "$work/photos" 1 --exact-shrink
    rec scenario=S6 system="sharp (fastShrinkOnLoad off)" variant="1 core" unit=images/s \
        throughput="$(jq '.images_per_s * 10 | round / 10' "$work/stdout")" rss_mib="$peak" steal_pct="$steal" \
        note="reference: libjpeg-turbo decoding at ¼ scale or more, not ⅛"
    measure taskset -c 0 "$examples/thumbnail_bench" "$images" 1 full
    rec scenario=S6 system="Forklift (full-size decoding)" variant="1 core" unit=images/s \
        throughput="$(grep '^| full' "$work/stdout" | cut -d'|' -f4 | tr -d ' ')" rss_mib="$peak" steal_pct="$steal" \
        note="reference: without DCT scaling"
    rm -rf "$work/photos"
fi

# ---- S9: data profile ----
if want csv; then
    say "S9 data profile of a $csv_mb MB CSV"
    section_load csv
    "$examples/gen_csv" "$work/bench.csv" "$csv_mb" >/dev/null
    csv_bytes=$(stat -c %s "$work/bench.csv")
    meta csv "$csv_bytes bytes, 12 columns (gen_csv)"
    measure "$examples/profile_csv" "$work/bench.csv"
    rows=$(grep -o '^rows [0-9]*' "$work/stdout" | cut -d' ' -f2)
    threads=$(grep -o 'threads [0-9]*' "$work/stdout" | cut -d' ' -f2)
    rec scenario=S9 system=Forklift unit=MB/s throughput="$(grep -o 'MB/s [0-9.]*' "$work/stdout" | cut -d' ' -f2)" \
        rss_mib="$peak" steal_pct="$steal" note="$rows rows, streaming, $threads threads"
    measure "$examples/profile_csv" --threads 1 "$work/bench.csv"
    rec scenario=S9 system="Forklift (1 thread)" unit=MB/s throughput="$(grep -o 'MB/s [0-9.]*' "$work/stdout" | cut -d' ' -f2)" \
        rss_mib="$peak" steal_pct="$steal" note="reference: the same on one thread"
    for engine in pandas polars; do
        note "$engine"
        measure "$venv/bin/python" bench/peers/pandas/profile.py "$engine" "$work/bench.csv"
        prow=$(jq .rows "$work/stdout")
        [[ "$prow" == "$rows" ]] || note "WARNING: $engine read $prow rows, Forklift $rows"
        rec scenario=S9 system="$engine" unit=MB/s throughput="$(jq .mb_per_s "$work/stdout")" rss_mib="$peak" steal_pct="$steal" \
            note="$engine $(jq -r .version "$work/stdout"), $prow rows"
    done
    rm -f "$work/bench.csv"
fi

# ---- results ----
meta duration "$(($(date +%s) - run_started)) s"
meta load "$(IFS=,; echo "${loads[*]}" | sed 's/,/, /g')"
mkdir -p bench/results
python3 bench/lib/report.py "$BENCH_RESULTS" "$meta" "bench/results/$day.md" "bench/results/$day.svg"
cp "$BENCH_RESULTS" "$keep_logs.results.jsonl" 2>/dev/null || true
say "wrote bench/results/$day.md and bench/results/$day.svg in $(($(date +%s) - run_started)) s"

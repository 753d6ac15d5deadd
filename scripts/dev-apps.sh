#!/usr/bin/env bash
# The Forklift processes of `just dev`: builds, then runs the jobs API, a worker and
# the web app until SIGTERM or SIGINT, and stops all three on either.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins --quiet
bin=$FORKLIFT_DEV_TARGET/debug
pids=()
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait; exit 0; }
trap stop INT TERM
log=$FORKLIFT_DATA_DIR/../logs
FORKLIFT_ROLE=api FORKLIFT_GRPC_ADDR=127.0.0.1:$grpc_port FORKLIFT_HTTP_ADDR=127.0.0.1:$api_http_port \
  "$bin/forklift-jobs" >>"$log/jobs-api.log" 2>&1 &
pids+=($!)
FORKLIFT_ROLE=worker FORKLIFT_HTTP_ADDR=127.0.0.1:$worker_http_port \
  "$bin/forklift-jobs" >>"$log/jobs-worker.log" 2>&1 &
pids+=($!)
FORKLIFT_JOBS_URL=http://127.0.0.1:$grpc_port FORKLIFT_HTTP_ADDR=127.0.0.1:$web_port \
  "$bin/forklift-web" >>"$log/web.log" 2>&1 &
pids+=($!)
wait -n "${pids[@]}" || true
echo "a Forklift process exited; see $log" >&2
stop

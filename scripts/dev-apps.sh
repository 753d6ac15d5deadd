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
dev=$FORKLIFT_DEV_DIR
log=$dev/logs
# The first admin, made the way an operator makes one on a cluster.
(umask 077
 [ -s "$dev/data/admin-password" ] ||
   "$bin/forklift-jobs" admin create-user --email admin@localhost --admin >"$dev/data/admin-password"
 [ -s "$dev/data/admin-token" ] ||
   "$bin/forklift-jobs" admin create-token --email admin@localhost --name "just dev" >"$dev/data/admin-token")
FORKLIFT_DATA_DIR=$dev/data/jobs-api FORKLIFT_ROLE=api FORKLIFT_GRPC_ADDR=127.0.0.1:$grpc_port FORKLIFT_HTTP_ADDR=127.0.0.1:$api_http_port \
  "$bin/forklift-jobs" >>"$log/jobs-api.log" 2>&1 &
pids+=($!)
FORKLIFT_DATA_DIR=$dev/data/jobs-worker FORKLIFT_ROLE=worker FORKLIFT_HTTP_ADDR=127.0.0.1:$worker_http_port \
  "$bin/forklift-jobs" >>"$log/jobs-worker.log" 2>&1 &
pids+=($!)
FORKLIFT_DATA_DIR=$dev/data/web FORKLIFT_JOBS_URL=http://127.0.0.1:$grpc_port FORKLIFT_HTTP_ADDR=127.0.0.1:$web_port \
  "$bin/forklift-web" >>"$log/web.log" 2>&1 &
pids+=($!)
wait -n "${pids[@]}" || true
echo "a Forklift process exited; see $log" >&2
stop

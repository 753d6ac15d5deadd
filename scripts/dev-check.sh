#!/usr/bin/env bash
# Checks `just dev` the way a developer uses it: start it from a clean data directory
# on spare ports, run a job through the extracted topology with grpcurl, press Ctrl-C,
# and make sure no process it started is left. Needs grpcurl and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in grpcurl jq curl; do
  command -v "$tool" >/dev/null || { echo "dev-check: needs $tool on PATH (.ci/run installs it)"; exit 1; }
done
dir=$(mktemp -d)
export FORKLIFT_DEV_DIR=$dir FORKLIFT_DEV_WEB_PORT=3190 FORKLIFT_DEV_GRPC_PORT=50191 \
  FORKLIFT_DEV_API_HTTP_PORT=3191 FORKLIFT_DEV_WORKER_HTTP_PORT=3192 \
  FORKLIFT_DEV_REDIS_PORT=6391 FORKLIFT_DEV_PG_PORT=5441 FORKLIFT_DEBUG_KINDS=true FORKLIFT_DEV_WATCH=0
setsid scripts/dev.sh >"$dir.out" 2>&1 < /dev/null &
dev=$!
# Whatever stops this script early, the topology it started goes too.
trap 'kill -INT -"$dev" 2>/dev/null || true' EXIT
fail() { echo "dev-check: $*"; cat "$dir.out"; tail -20 "$dir"/logs/*.log 2>/dev/null; kill -INT -"$dev" 2>/dev/null; exit 1; }
for _ in $(seq 1 1800); do
  curl -fsS -o /dev/null "http://127.0.0.1:3190/readyz" 2>/dev/null && break
  kill -0 "$dev" 2>/dev/null || fail "just dev exited early"
  sleep 0.2
done
curl -fsS "http://127.0.0.1:3190/readyz" >/dev/null || fail "the web app never became ready"
token=$(cat "$dir/data/admin-token")
job=$(grpcurl -plaintext -H "authorization: Bearer $token" -d '{"params": {"debugSleep": {"durationMs": 200}}}' \
  127.0.0.1:50191 forklift.v1.Jobs/SubmitJob | jq -r .id)
grpcurl -plaintext -H "authorization: Bearer $token" -d "{\"id\": \"$job\"}" 127.0.0.1:50191 forklift.v1.Jobs/WatchJob \
  | jq -r .state | tail -1 | grep -q JOB_STATE_SUCCEEDED || fail "the job did not succeed"
curl -fsS http://127.0.0.1:3192/metrics | grep -q 'forklift_job_duration_seconds_count{kind="debug.sleep",outcome="succeeded"} 1' \
  || fail "the worker's metrics do not show the job"
kill -INT -"$dev"
wait "$dev" || true
left=$(ps -eo pid,args | grep -F "$dir" | grep -v grep || true)
left+=$(ps -eo pid,args | grep -E 'forklift-(web|jobs)|redis-server .*6391' | grep -v grep || true)
[ -z "$left" ] || fail "processes left behind: $left"
rm -rf "$dir" "$dir.out"
echo "dev-check: 1 passed, 0 failed"

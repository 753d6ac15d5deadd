#!/usr/bin/env bash
# Checks `just dev` the way a developer uses it: start it from a clean data directory
# on spare ports, run a job through the extracted topology with grpcurl, press Ctrl-C,
# and make sure every process it started has exited — and that nothing else was touched.
# Needs grpcurl, jq and curl.
#
# Ctrl-C goes to dev.sh alone (SIGINT to its pid, not its process group), so the check
# passes only if dev.sh's own clean-up stops what it started. Which processes those are is
# recorded before the signal: dev.sh's descendants and session, and the PostgreSQL server
# (pg_ctl detaches it; its pid file names it). Nothing is looked up by name, so another
# `forklift-web` on the machine (a `cargo run` in another terminal) neither fails the
# check nor gets stopped by it: a decoy of that name runs throughout to prove both.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in grpcurl jq curl; do
  command -v "$tool" >/dev/null || { echo "dev-check: needs $tool on PATH (.ci/run installs it)"; exit 1; }
done

# A process's start time (field 22 of /proc/PID/stat): with the pid, it names the process
# even if the pid is reused later. Fails for processes that are gone or zombies.
started_at() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # The command name (field 2) may hold spaces; fields after it are plain.
  set -- ${stat##*) }
  [ "$1" != Z ] || return 1
  echo "${20}"
}
# Whether the process recorded as PID:START still runs.
running() { [ "$(started_at "${1%%:*}" 2>/dev/null)" = "${1#*:}" ]; }
# The given pids and all their descendants.
descendants() {
  ps -eo pid=,ppid= | awk -v roots="$*" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
    { parent[$1] = $2 }
    END { do { more = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; more = 1 } } while (more)
          for (p in keep) print p }'
}
# Members of session SID (dev.sh leads its own, see setsid below).
session() { ps -eo pid=,sid= | awk -v sid="$1" '$2 == sid { print $1 }'; }
describe() { for p in "$@"; do ps -o pid=,args= -p "${p%%:*}" 2>/dev/null || true; done; }

dir=$(mktemp -d)
# The decoy: an unrelated process named like ours, started before and outside `just dev`.
decoy_dir=$(mktemp -d)
cp "$(command -v sleep)" "$decoy_dir/forklift-web"
"$decoy_dir/forklift-web" 3600 &
decoy="$!:$(started_at $!)"

export FORKLIFT_DEV_DIR=$dir FORKLIFT_DEV_WEB_PORT=3190 FORKLIFT_DEV_GRPC_PORT=50191 \
  FORKLIFT_DEV_API_HTTP_PORT=3191 FORKLIFT_DEV_WORKER_HTTP_PORT=3192 \
  FORKLIFT_DEV_REDIS_PORT=6391 FORKLIFT_DEV_PG_PORT=5441 FORKLIFT_DEBUG_KINDS=true FORKLIFT_DEV_WATCH=0
# Its own session and process group, so that a failed check can still clean up after it.
# (A background job of a script is no group leader, so setsid execs dev.sh in place.)
# A background job also starts with SIGINT ignored, and bash cannot trap a signal ignored
# on entry; run from a terminal, dev.sh has SIGINT at its default, so restore that.
setsid env --default-signal=INT scripts/dev.sh >"$dir.out" 2>&1 < /dev/null &
dev=$!
dev_id="$dev:$(started_at "$dev")"
ours=()
passed=

# However this script ends, it stops what it started. After a failure: Ctrl-C to dev.sh,
# then, should anything outlive that, dev.sh's process group and every recorded process.
cleanup() {
  if [ -z "$passed" ]; then
    running "$dev_id" && kill -INT "$dev" 2>/dev/null || true
    for _ in $(seq 1 100); do running "$dev_id" || break; sleep 0.1; done
    # Linux reuses no pid while it still names a process group, so the group is ours.
    kill -TERM -- -"$dev" 2>/dev/null || true
    for p in "${ours[@]}"; do running "$p" && kill -TERM "${p%%:*}" 2>/dev/null || true; done
    # PostgreSQL left its group: its pid file names it (fast shutdown on SIGINT).
    pm=$(head -1 "$dir/pg/postmaster.pid" 2>/dev/null) && grep -qaF "$dir" "/proc/$pm/cmdline" 2>/dev/null \
      && kill -INT "$pm" || true
  fi
  running "$decoy" && kill -TERM "${decoy%%:*}" 2>/dev/null || true
  rm -rf "$decoy_dir"
  return 0
}
trap cleanup EXIT
fail() { echo "dev-check: $*"; cat "$dir.out"; tail -20 "$dir"/logs/*.log 2>/dev/null; exit 1; }

# dev.sh leads its own session: setsid ran it in place rather than in a child of its own.
for _ in $(seq 1 50); do [ "$(ps -o sid= -p "$dev" | tr -d ' ')" = "$dev" ] && break; sleep 0.1; done
[ "$(ps -o sid= -p "$dev" | tr -d ' ')" = "$dev" ] || fail "dev.sh (pid $dev) did not start a session of its own"
for _ in $(seq 1 1800); do
  curl -fsS -o /dev/null "http://127.0.0.1:3190/readyz" 2>/dev/null && break
  running "$dev_id" || fail "just dev exited early"
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

# Record every process `just dev` started, then check the record is complete enough to
# mean something: both jobs processes, the web app, Redis and PostgreSQL.
postmaster=$(head -1 "$dir/pg/postmaster.pid" 2>/dev/null) || fail "no PostgreSQL pid file"
for pid in $( { descendants "$dev" "$postmaster"; session "$dev"; } | sort -un); do
  [ "$pid" = "${decoy%%:*}" ] && fail "the decoy looks like a process of just dev"
  at=$(started_at "$pid") && ours+=("$pid:$at")
done
names=$(for p in "${ours[@]}"; do ps -o comm= -p "${p%%:*}" || true; done | sort | uniq -c)
for want in "2 forklift-jobs" "1 forklift-web" "1 redis-server"; do
  grep -qx " *$want" <<<"$names" || fail "expected $want among the processes of just dev, found: $names"
done
grep -q ' postgres$' <<<"$names" || fail "PostgreSQL is not among the processes of just dev: $names"

# Ctrl-C, to dev.sh only.
kill -INT "$dev"
for _ in $(seq 1 600); do running "$dev_id" || break; sleep 0.1; done
running "$dev_id" && fail "dev.sh did not exit within 60 s of Ctrl-C"
wait "$dev" || true
left=()
for _ in $(seq 1 100); do
  left=()
  for p in "${ours[@]}"; do running "$p" && left+=("$p"); done
  [ ${#left[@]} -eq 0 ] && break
  sleep 0.1
done
[ ${#left[@]} -eq 0 ] || fail "processes left behind: $(describe "${left[@]}")"
# Nothing started after the record is left either: no member of dev.sh's session, nothing
# running from its data directory.
stray=$(session "$dev"; ps -eo pid=,args= | grep -F "$dir" | grep -v grep | awk '{ print $1 }' || true)
[ -z "$stray" ] || fail "processes left behind: $(describe $stray)"
running "$decoy" || fail "the unrelated forklift-web process was stopped"
passed=1
rm -rf "$dir" "$dir.out"
echo "dev-check: 1 passed, 0 failed (${#ours[@]} processes stopped, an unrelated forklift-web left alone)"

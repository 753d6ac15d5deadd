#!/usr/bin/env bash
# `just dev`: the extracted topology on this machine — Redis and PostgreSQL with
# throwaway data under .dev/, the jobs API, a worker and the web app as separate
# processes. Rebuilds and restarts the Forklift processes on code changes when
# watchexec is installed. Ctrl-C stops every process it started.
#
# Ports (override with the variables): web 3000, gRPC 50051, jobs HTTP 3001/3002,
# Redis 6390, PostgreSQL 5440. FORKLIFT_DEV_DIR moves the data (default .dev);
# FORKLIFT_DEV_WATCH=0 turns the watcher off.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=${FORKLIFT_DEV_DIR:-$PWD/.dev}
web_port=${FORKLIFT_DEV_WEB_PORT:-3000}
grpc_port=${FORKLIFT_DEV_GRPC_PORT:-50051}
api_http_port=${FORKLIFT_DEV_API_HTTP_PORT:-3001}
worker_http_port=${FORKLIFT_DEV_WORKER_HTTP_PORT:-3002}
redis_port=${FORKLIFT_DEV_REDIS_PORT:-6390}
pg_port=${FORKLIFT_DEV_PG_PORT:-5440}
target=${CARGO_TARGET_DIR:-$PWD/target}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if ! command -v redis-server >/dev/null || [ -z "$pg_bin" ]; then
  echo "just dev needs Redis and PostgreSQL. Install them with:"
  echo "  sudo apt-get install -y redis-server postgresql"
  exit 1
fi

mkdir -p "$dev/redis" "$dev/data" "$dev/files" "$dev/logs"
# As root, PostgreSQL runs as the postgres user, which must reach its directory.
[ "$(id -u)" = 0 ] && chmod 755 "$dev"
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_all() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  as_pg "$pg_bin/pg_ctl" -D "$dev/pg" -m fast -w stop >/dev/null 2>&1 || true
  echo "stopped."
}
trap stop_all INT TERM EXIT

# Redis as a queue needs it: append-only, fsync every second, never evict.
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dev/redis" \
  --appendonly yes --appendfsync everysec --maxmemory-policy noeviction --save '' \
  >"$dev/logs/redis.log" 2>&1 &
pids+=($!)

if [ ! -f "$dev/pg/PG_VERSION" ]; then
  mkdir -p "$dev/pg"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dev/pg"
  as_pg "$pg_bin/initdb" -D "$dev/pg" -U forklift --auth=trust -E UTF8 >"$dev/logs/initdb.log"
fi
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dev/logs"
as_pg "$pg_bin/pg_ctl" -D "$dev/pg" -l "$dev/logs/postgres.log" -w \
  -o "-p $pg_port -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
"$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U forklift -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'forklift'" | grep -q 1 \
  || "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U forklift forklift
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$dev/logs/redis.log"; exit 1; }
  sleep 0.1
done

export FORKLIFT_DATABASE_URL="postgres://forklift@127.0.0.1:$pg_port/forklift"
export FORKLIFT_REDIS_URL="redis://127.0.0.1:$redis_port/"
# Each process gets a data directory of its own, as pods do; files live in one storage
# every process names by URL (a directory here, standing in for a bucket or a shared volume).
export FORKLIFT_STORAGE_URL="${FORKLIFT_STORAGE_URL:-file://$dev/files}"
export FORKLIFT_DEV_DIR="$dev"
# The web app acts for signed-in users with this secret; all three processes share it.
export FORKLIFT_SERVICE_TOKEN="${FORKLIFT_SERVICE_TOKEN:-dev-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}"
export FORKLIFT_DEV_TARGET="$target"
export web_port grpc_port api_http_port worker_http_port

echo "Forklift, extracted (Ctrl-C stops everything):"
echo "  Web:        http://127.0.0.1:$web_port"
echo "  gRPC API:   127.0.0.1:$grpc_port  (token: $dev/data/admin-token)"
echo "  Admin:      admin@localhost, password in $dev/data/admin-password"
echo "  Jobs HTTP:  http://127.0.0.1:$api_http_port/metrics (api), http://127.0.0.1:$worker_http_port/metrics (worker)"
echo "  Redis:      $FORKLIFT_REDIS_URL"
echo "  PostgreSQL: $FORKLIFT_DATABASE_URL"
echo "  Files:      $FORKLIFT_STORAGE_URL"
echo "  Logs:       $dev/logs"

if [ "${FORKLIFT_DEV_WATCH:-1}" != 0 ] && command -v watchexec >/dev/null; then
  watchexec --restart --stop-signal SIGTERM --watch apps --watch crates --watch services \
    --watch proto --exts rs,toml,proto,sql -- scripts/dev-apps.sh &
else
  echo "(install watchexec to rebuild and restart on code changes)"
  scripts/dev-apps.sh &
fi
pids=("$!" "${pids[@]}")
wait "${pids[0]}"

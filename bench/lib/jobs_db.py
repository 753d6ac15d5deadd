"""Reads job rows straight from the record (Forklift's `jobs` table, or the peers' table
of the same shape; times are milliseconds since the epoch) for S4 and S5.

  jobs_db.py drain <db> [timeout_s]
      waits until no job is queued or running.
  jobs_db.py stats <db> <since_ms> <n> [timeout_s]
      waits until the n jobs created since since_ms have finished, then prints
      {"jobs", "failed", "seconds", "jobs_per_s", "wait_p50_ms", "wait_p99_ms"}:
      seconds from the first job's creation to the last one's end, and the
      enqueue-to-start latency (started_at - created_at).

<db> is sqlite:PATH (read-only) or a postgres:// URL (through psql).
"""

import os
import sqlite3
import subprocess
import sys
import time
import json

PSQL = os.environ.get("PSQL", "psql")


def query(db, sql):
    if db.startswith("sqlite:"):
        con = sqlite3.connect(f"file:{db[7:]}?mode=ro", uri=True, timeout=30)
        try:
            return [tuple(r) for r in con.execute(sql).fetchall()]
        finally:
            con.close()
    out = subprocess.run([PSQL, "-X", "-qtA", "-F", "\t", "-d", db, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [tuple(int(x) if x.lstrip("-").isdigit() else x for x in line.split("\t"))
            for line in out.splitlines() if line]


def pct(sorted_values, p):
    if not sorted_values:
        return None
    i = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * p // 100) - 1))
    return sorted_values[int(i)]


def main():
    cmd, db = sys.argv[1], sys.argv[2]
    if cmd == "drain":
        timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 120
        deadline = time.time() + timeout
        while True:
            (left,), = query(db, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
            if left == 0:
                return
            if time.time() > deadline:
                sys.exit(f"{left} jobs still queued or running after {timeout:.0f} s")
            time.sleep(0.25)
    since, n = int(sys.argv[3]), int(sys.argv[4])
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 300
    deadline = time.time() + timeout
    while True:
        (done,), = query(db, f"SELECT count(*) FROM jobs WHERE created_at >= {since} "
                             "AND state IN ('succeeded', 'failed', 'cancelled')")
        if done >= n:
            break
        if time.time() > deadline:
            sys.exit(f"only {done} of {n} jobs finished within {timeout:.0f} s")
        time.sleep(0.2)
    rows = query(db, f"SELECT created_at, started_at, finished_at, state FROM jobs WHERE created_at >= {since}")
    first = min(r[0] for r in rows)
    last = max(r[2] for r in rows)
    waits = sorted(r[1] - r[0] for r in rows if r[1] is not None and r[1] != "")
    seconds = (last - first) / 1000
    print(json.dumps({
        "jobs": len(rows),
        "failed": sum(1 for r in rows if r[3] != "succeeded"),
        "seconds": seconds,
        "jobs_per_s": round(len(rows) / seconds, 1),
        "wait_p50_ms": pct(waits, 50),
        "wait_p99_ms": pct(waits, 99),
    }))


if __name__ == "__main__":
    main()

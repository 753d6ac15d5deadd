"""S7: cold start, from exec to the first 200 on /healthz, median of N runs.

Usage: coldstart.py <runs> <healthz url template> -- <command...>
Each run picks two free loopback ports, substitutes them for {port} and {port2} in
the URL and the command's arguments and environment values, execs the command, polls the URL every
millisecond, records the time to the first 200, then stops the process (SIGTERM,
then SIGKILL after 5 s). Prints {"median_ms", "runs_ms"}.
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    runs = int(sys.argv[1])
    url_template = sys.argv[2]
    cmd_template = sys.argv[sys.argv.index("--") + 1:]
    times = []
    for _ in range(runs):
        port, port2 = str(free_port()), str(free_port())

        def sub(s):
            return s.replace("{port}", port).replace("{port2}", port2)

        cmd = [sub(a) for a in cmd_template]
        env = {k: sub(v) for k, v in os.environ.items()}
        url = sub(url_template)
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        elapsed = None
        deadline = started + 60
        while time.perf_counter() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        elapsed = (time.perf_counter() - started) * 1000
                        break
            except OSError:
                pass
            time.sleep(0.001)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
        if elapsed is None:
            sys.exit(f"{cmd[0]} never answered 200 on {url} (exit {proc.returncode})")
        times.append(round(elapsed, 1))
        time.sleep(0.3)
    print(json.dumps({"median_ms": statistics.median(times), "runs_ms": times}))


if __name__ == "__main__":
    main()

"""Peak resident memory of a server and its child processes.

Usage: rss.py <pid> <out.json>
Samples VmRSS of the process tree every 100 ms until the process exits or this
watcher gets SIGTERM, then writes {"hwm_root_mib", "peak_tree_mib", "processes"}:
the root's own VmHWM (the kernel's exact peak), and the highest sampled sum over the
tree (for multi-process servers such as a Node cluster or `next start`).
"""

import json
import os
import signal
import sys
import time


def status(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return 0.0


def tree(root):
    children = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(p))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def main():
    root, out = int(sys.argv[1]), sys.argv[2]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    peak, hwm, procs = 0.0, 0.0, 1
    while not stop:
        pids = tree(root)
        rss = [status(p, "VmRSS") for p in pids]
        if rss[0] is None:
            break
        h = status(root, "VmHWM")
        hwm = max(hwm, h or 0.0)
        peak = max(peak, sum(r for r in rss if r))
        procs = max(procs, len(pids))
        time.sleep(0.1)
    with open(out, "w") as f:
        json.dump({"hwm_root_mib": round(hwm, 1), "peak_tree_mib": round(peak, 1), "processes": procs}, f)


if __name__ == "__main__":
    main()

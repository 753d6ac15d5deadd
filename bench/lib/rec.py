"""Appends one result to the results file ($BENCH_RESULTS, JSON lines).

Usage: rec.py key=value ...   (numbers become numbers; empty values are left out)
"""

import json
import os
import sys

row = {}
for arg in sys.argv[1:]:
    key, _, value = arg.partition("=")
    if value == "":
        continue
    try:
        row[key] = float(value) if any(c in value for c in ".eE") else int(value)
    except ValueError:
        row[key] = value
with open(os.environ["BENCH_RESULTS"], "a") as f:
    f.write(json.dumps(row) + "\n")
print("  " + "  ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr)

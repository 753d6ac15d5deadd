"""S9 for pandas and polars: a data profile of a CSV with the statistics Forklift's
`data.profile` computes (crates/profile/README.md), per column:

  type (integer, float, boolean, date, datetime, string, empty), count, nulls,
  distinct (exact), min, max, mean, stddev (sample), quantiles p1 p5 p25 p50 p75 p95 p99,
  a histogram of up to 64 equal-width bins (numeric, date and datetime columns),
  the 10 most frequent values, and min/max length (text columns).

Nulls are Forklift's list (pandas' rule without spellings like "na"). Each library is
used as its documentation suggests: pandas reads the whole file with `read_csv` and
then works column by column; polars reads it with `read_csv` (all cores,
`try_parse_dates`) and computes each column's statistics in one `select`.

Usage: python profile.py pandas|polars <csv> [report.json]
Prints one JSON line: engine, version, rows, bytes, seconds, mb_per_s.
"""

import json
import os
import sys
import time

NULLS = ["", "NULL", "null", "Null", "NA", "N/A", "n/a", "NaN", "nan", "None", "#N/A", "<NA>", "nil"]
QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
BINS = 64
TOP = 10


def plain(v):
    """A JSON-friendly scalar."""
    if v is None:
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def histogram(values):
    import numpy as np

    if len(values) == 0:
        return None
    counts, edges = np.histogram(values, bins=BINS)
    return {"start": float(edges[0]), "width": float(edges[1] - edges[0]), "counts": counts.tolist()}


def profile_pandas(path):
    import numpy as np
    import pandas as pd

    df = pd.read_csv(path, keep_default_na=False, na_values=NULLS, skipinitialspace=True)
    columns = []
    for index, name in enumerate(df.columns):
        s = df[name]
        nulls = int(s.isna().sum())
        col = {"index": index, "name": name, "count": int(len(s) - nulls), "nulls": nulls}
        kind = s.dtype.kind
        if nulls == len(s):
            col["type"] = "empty"
        elif kind == "b":
            col["type"] = "boolean"
        elif kind in "iu":
            col["type"] = "integer"
        elif kind == "f":
            col["type"] = "float"
        else:
            text = s.dropna().astype(str).str.strip()
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
            if parsed.notna().all():
                col["type"] = "date" if (text.str.len() == 10).all() else "datetime"
                s = parsed
            else:
                col["type"] = "string"
                lengths = text.str.len()
                col["min_length"] = int(lengths.min())
                col["max_length"] = int(lengths.max())
                s = text
        col["distinct"] = {"value": int(s.nunique()), "exact": True}
        if col["type"] != "empty":
            col["min"] = plain(s.min())
            col["max"] = plain(s.max())
        if col["type"] in ("integer", "float"):
            col["mean"] = plain(s.mean())
            col["stddev"] = plain(s.std())
        if col["type"] in ("integer", "float", "date", "datetime"):
            q = s.quantile(QUANTILES)
            col["quantiles"] = {f"p{round(p * 100)}": plain(v) for p, v in zip(QUANTILES, q)}
            values = s.dropna()
            if col["type"] in ("date", "datetime"):
                values = (values - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
            col["histogram"] = histogram(values.to_numpy(dtype=np.float64))
        top = s.value_counts(dropna=True).head(TOP)
        col["top_values"] = [{"value": str(plain(k)), "count": int(v)} for k, v in top.items() if v > 1]
        columns.append(col)
    return {"rows": int(len(df)), "columns": columns}


def profile_polars(path):
    import polars as pl

    df = pl.read_csv(path, null_values=NULLS, try_parse_dates=True, infer_schema_length=10000)
    exprs = []
    kinds = {}
    for name, dtype in df.schema.items():
        c = pl.col(name)
        if dtype == pl.Boolean:
            kind = "boolean"
        elif dtype.is_integer():
            kind = "integer"
        elif dtype.is_float():
            kind = "float"
        elif dtype == pl.Date:
            kind = "date"
        elif dtype == pl.Datetime:
            kind = "datetime"
        elif dtype == pl.Null:
            kind = "empty"
        else:
            kind = "string"
        kinds[name] = kind
        exprs += [
            c.null_count().alias(f"{name}\0nulls"),
            c.drop_nulls().n_unique().alias(f"{name}\0distinct"),
            c.min().alias(f"{name}\0min"),
            c.max().alias(f"{name}\0max"),
        ]
        if kind in ("integer", "float"):
            exprs += [c.mean().alias(f"{name}\0mean"), c.std().alias(f"{name}\0stddev")]
        if kind in ("integer", "float", "date", "datetime"):
            exprs += [c.quantile(p, "nearest").alias(f"{name}\0q{round(p * 100)}") for p in QUANTILES]
        if kind == "string":
            exprs += [
                c.str.len_chars().min().alias(f"{name}\0min_length"),
                c.str.len_chars().max().alias(f"{name}\0max_length"),
            ]
    stats = df.select(exprs).row(0, named=True)
    rows = df.height
    columns = []
    for index, (name, kind) in enumerate(kinds.items()):
        get = lambda k: stats.get(f"{name}\0{k}")  # noqa: E731
        nulls = int(get("nulls"))
        col = {"index": index, "name": name, "type": kind, "count": rows - nulls, "nulls": nulls,
               "distinct": {"value": int(get("distinct")), "exact": True},
               "min": plain(get("min")), "max": plain(get("max"))}
        if kind in ("integer", "float"):
            col["mean"], col["stddev"] = plain(get("mean")), plain(get("stddev"))
        if kind in ("integer", "float", "date", "datetime"):
            col["quantiles"] = {f"p{round(p * 100)}": plain(get(f"q{round(p * 100)}")) for p in QUANTILES}
            values = df.get_column(name).drop_nulls()
            if kind in ("date", "datetime"):
                values = values.cast(pl.Datetime("ms")).dt.epoch("ms") / 1000.0
            col["histogram"] = histogram(values.cast(pl.Float64).to_numpy())
        if kind == "string":
            col["min_length"], col["max_length"] = int(get("min_length")), int(get("max_length"))
        top = df.get_column(name).drop_nulls().value_counts(sort=True, name="n").head(TOP)
        col["top_values"] = [{"value": str(plain(v)), "count": int(n)} for v, n in top.iter_rows() if n > 1]
        columns.append(col)
    return {"rows": rows, "columns": columns}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("pandas", "polars"):
        sys.exit("usage: profile.py pandas|polars <csv> [report.json]")
    engine, path = sys.argv[1], sys.argv[2]
    if engine == "pandas":
        import pandas as lib

        run = profile_pandas
    else:
        import polars as lib

        run = profile_polars
    size = os.path.getsize(path)
    started = time.perf_counter()
    report = run(path)
    seconds = time.perf_counter() - started
    report["bytes"] = size
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            json.dump(report, f, indent=1, default=str)
    print(json.dumps({"engine": engine, "version": lib.__version__, "rows": report["rows"], "bytes": size,
                      "seconds": round(seconds, 3), "mb_per_s": round(size / 1e6 / seconds, 1)}))


if __name__ == "__main__":
    main()

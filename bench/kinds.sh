#!/usr/bin/env bash
# Measures the file-processing kinds on this machine and writes
# bench/results/<YYYY-MM-DD>-kinds.md: image thumbnails per second (full-size against
# DCT-scaled JPEG decoding, one core and all cores) and CSV profiling throughput, each
# with its peak resident memory.
#
# Usage: bench/kinds.sh [csv-megabytes]   (default 1024; THUMB_IMAGES sets the number
# of 3000×2000 JPEGs, default 20). Honours CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
csv_mb="${1:-1024}"
images="${THUMB_IMAGES:-20}"
cores="$(nproc)"
examples="${CARGO_TARGET_DIR:-$PWD/target}/release/examples"
out="bench/results/$(date +%F)-kinds.md"

tmp="$(mktemp -d)"
cleanup() {
    # Whatever is still running was started here (an interrupted measurement).
    # GNU time does not pass a TERM on, so its child is stopped first.
    local pid
    for pid in $(jobs -p); do
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ! -x /usr/bin/time ]]; then
    echo "installing GNU time for peak-memory figures" >&2
    apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

echo "building release examples" >&2
cargo build --release --quiet -p forklift-kinds -p forklift-profile --examples

# Runs a command under GNU time; its standard output goes to $tmp/stdout and its
# peak resident set, in MiB, to $tmp/rss.
measure() {
    /usr/bin/time -v -o "$tmp/time" "$@" >"$tmp/stdout" &
    wait $!
    awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$tmp/time" >"$tmp/rss"
}

rows=()
# Thumbnail rows look like "| full size | 1 | 12.3 | 81.3 |".
thumbnails() {
    local where="$1" threads="$2" path="$3"
    shift 3
    measure "$@" "$examples/thumbnail_bench" "$images" "$threads" "$path"
    local row
    row="$(grep '^| [fD]' "$tmp/stdout")"
    IFS='|' read -r _ label _ per_second ms _ <<<"$row"
    rows+=("| thumbnail 256 px wide, ${label# }decoding, $where | ${per_second// /} images/s (${ms// /} ms/image per thread) | $(cat "$tmp/rss") MiB |")
    echo "${rows[-1]}" >&2
}

pin=()
if command -v taskset >/dev/null; then
    pin=(taskset -c 0)
fi
for path in full scaled; do
    thumbnails "1 core" 1 "$path" "${pin[@]}"
done
for path in full scaled; do
    thumbnails "$cores threads" "$cores" "$path"
done

echo "generating a $csv_mb MB CSV" >&2
"$examples/gen_csv" "$tmp/bench.csv" "$csv_mb"
csv_bytes="$(stat -c %s "$tmp/bench.csv")"
measure "$examples/profile_csv" "$tmp/bench.csv"
mb_per_s="$(grep -o 'MB/s [0-9.]*' "$tmp/stdout" | cut -d' ' -f2)"
rows+=("| CSV profile, $((csv_bytes / 1000000)) MB file, 1 thread | $mb_per_s MB/s | $(cat "$tmp/rss") MiB |")
echo "${rows[-1]}" >&2
rm -f "$tmp/bench.csv"

mkdir -p bench/results
{
    echo "# Kinds benchmark, $(date +%F)"
    echo
    echo "- Machine: $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) memory"
    echo "- Toolchain: $(rustc -V)"
    echo "- Thumbnails: $images photo-like 3000×2000 JPEGs (quality 90), each decoded, resized to 256 px wide (Lanczos3) and encoded as JPEG quality 85; \"1 core\" runs pinned to one CPU with \`taskset\`."
    echo "- CSV: \`gen_csv\` output profiled by \`profile_csv\` (streaming, default options)."
    echo "- Peak RSS: maximum resident set of the whole process, from GNU \`time -v\`."
    echo
    echo "| scenario | throughput | peak RSS |"
    echo "|---|---:|---:|"
    printf '%s\n' "${rows[@]}"
} >"$out"
echo "wrote $out" >&2

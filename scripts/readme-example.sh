#!/usr/bin/env bash
# Runs the README's grpcurl and curl walk-throughs against a freshly built forklift-web on free
# ports and a throwaway data directory, and checks every step. Needs grpcurl and jq.
set -euo pipefail

bin=${1:?usage: readme-example.sh PATH/TO/forklift-web}
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

# A 640x480 gradient PNG, written with nothing but Python's standard library.
python3 - <<'PY'
import struct, zlib
w, h = 640, 480
rows = b"".join(b"\0" + bytes(v for x in range(w) for v in (x * 255 // w, y * 255 // h, 128)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open("photo.png", "wb").write(png)
PY

FORKLIFT_HTTP_ADDR=127.0.0.1:0 FORKLIFT_GRPC_ADDR=127.0.0.1:0 FORKLIFT_LOG=warn "$bin" >banner.txt 2>server.log &
pid=$!
for _ in $(seq 1 300); do
  grep -q '^  gRPC:' banner.txt 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat server.log; echo "forklift-web exited"; exit 1; }
  sleep 0.1
done
ADDR=$(awk '/^  gRPC:/ {print $2}' banner.txt)
[ -n "$ADDR" ] || { echo "no gRPC address in the banner"; exit 1; }

# --- The README's steps, verbatim but for the address and file name ---
TOKEN=$(cat data/admin-token)
AUTH="authorization: Bearer $TOKEN"

{ echo '{"metadata": {"name": "photo.png"}}'
  split -b 3M --filter='printf "{\"chunk\": \"%s\"}\n" "$(base64 -w0)"' photo.png
} | grpcurl -plaintext -H "$AUTH" -d @ "$ADDR" forklift.v1.Files/UploadFile > file.json
FILE=$(jq -r .id file.json)

grpcurl -plaintext -H "$AUTH" -d "{
  \"params\": {\"imageThumbnail\": {\"sizes\": [{\"width\": 256}, {\"width\": 64, \"height\": 64}], \"fit\": \"FIT_COVER\"}},
  \"inputFileIds\": [\"$FILE\"]
}" "$ADDR" forklift.v1.Jobs/SubmitJob > job.json
JOB=$(jq -r .id job.json)

grpcurl -plaintext -H "$AUTH" -d "{\"id\": \"$JOB\"}" "$ADDR" forklift.v1.Jobs/WatchJob \
  | jq -c '{state, progressPercent, progressMessage}' > watch.jsonl

OUT=$(grpcurl -plaintext -H "$AUTH" -d "{\"id\": \"$JOB\"}" "$ADDR" forklift.v1.Jobs/GetJob | jq -r '.outputs[0].fileId')
grpcurl -plaintext -H "$AUTH" -d "{\"id\": \"$OUT\"}" "$ADDR" forklift.v1.Files/DownloadFile \
  | jq -r '.chunk // empty' | while read -r c; do printf %s "$c" | base64 -d; done > thumb.jpg
# --- end of the README's steps ---

tail -1 watch.jsonl | grep -q JOB_STATE_SUCCEEDED || { cat watch.jsonl; echo "job did not succeed"; exit 1; }
[ "$(head -c 3 thumb.jpg | od -An -tx1 | tr -d ' ')" = ffd8ff ] || { echo "download is not a JPEG"; exit 1; }
[ "$(jq -r '.outputs[0].name' <(grpcurl -plaintext -H "$AUTH" -d "{\"id\": \"$JOB\"}" "$ADDR" forklift.v1.Jobs/GetJob))" = thumb-1-256x192.jpg ] \
  || { echo "unexpected output name"; exit 1; }

# --- The README's JSON API steps, verbatim but for the address ---
BASE=$(awk '/^  Web:/ {print $2}' banner.txt)
T=$(cat data/admin-token)   # or a token from the API tokens page
FILE=$(curl -s -H "Authorization: Bearer $T" -F file=@photo.png $BASE/api/v1/files | jq -r .id)
JOB=$(curl -s -H "Authorization: Bearer $T" -H 'content-type: application/json' \
  -d "{\"kind\": \"image.thumbnail\", \"params\": {\"sizes\": [{\"width\": 256}]}, \"input_file_ids\": [\"$FILE\"]}" \
  $BASE/api/v1/jobs | jq -r .id)
curl -sN -H "Authorization: Bearer $T" $BASE/api/v1/jobs/$JOB/events | sed '/"final":true/q' > events.txt   # live, until done
OUT=$(curl -s -H "Authorization: Bearer $T" $BASE/api/v1/jobs/$JOB | jq -r '.outputs[0].file_id')
curl -s -H "Authorization: Bearer $T" -o thumb-api.jpg $BASE/api/v1/files/$OUT/content
# --- end ---

tail -1 events.txt | grep -q '"state":"succeeded"' || { cat events.txt; echo "JSON API job did not succeed"; exit 1; }
[ "$(head -c 3 thumb-api.jpg | od -An -tx1 | tr -d ' ')" = ffd8ff ] || { echo "JSON API download is not a JPEG"; exit 1; }
echo "readme-example: 2 passed, 0 failed"

#!/usr/bin/env bash
# The web app built without the `unified` feature (the extracted web app) must link no
# job code: it knows jobs only through the gRPC contract. Fails naming what crept in.
set -euo pipefail
cd "$(dirname "$0")/.."

tree=$(cargo tree -p forklift-web --no-default-features -e normal --prefix none --quiet)
forbidden='^(forklift-(api|runner|kinds|host|store|queue|blob|image|video)|image|jpeg-decoder|jpeg-encoder|png|fast_image_resize|image-webp|tiff|gif|redis|object_store) v'
found=$(grep -E "$forbidden" <<<"$tree" | sort -u || true)
if [ -n "$found" ]; then
  echo "check-web-deps: the extracted web app (forklift-web --no-default-features) links job code:" >&2
  echo "$found" >&2
  echo "check-web-deps: see 'cargo tree -p forklift-web --no-default-features -e normal -i <crate>' for why" >&2
  exit 1
fi
ours=$(grep -oE '^forklift-[a-z]+' <<<"$tree" | sort -u)
echo "check-web-deps: the extracted web app links no job code; of Forklift's crates: $(tr '\n' ' ' <<<"$ours")"

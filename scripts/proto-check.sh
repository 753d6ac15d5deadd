#!/usr/bin/env bash
# Lints proto/ (buf lint, rules in proto/buf.yaml) and checks it for breaking changes
# (buf breaking) against the state of the .proto files before their latest change:
#  - the work tree changes a .proto file: against HEAD;
#  - otherwise: against the parent of the last commit that changed one (so a clean
#    checkout — CI's fresh clone — still checks the newest change to the contract, even
#    with later commits on top).
# Needs the git history back to that commit (a full clone). buf is the pinned version in
# tools/buf (`npm ci --prefix tools/buf`, run here when it is missing and npm is
# there; .ci/run installs it too), or FORKLIFT_BUF.
# Exits non-zero on any lint finding or breaking change.
set -euo pipefail
cd "$(dirname "$0")/.."

buf="${FORKLIFT_BUF:-tools/buf/node_modules/.bin/buf}"
if [ ! -x "$buf" ] && [ -z "${FORKLIFT_BUF:-}" ] && command -v npm >/dev/null; then
  # A fresh clone: the pinned version, as .ci/run installs it.
  echo "proto-check: installing buf (npm ci --prefix tools/buf)" >&2
  npm ci --prefix tools/buf --ignore-scripts --no-audit --no-fund >&2
fi
if [ ! -x "$buf" ]; then
  echo "proto-check: no buf at $buf; install Node.js's npm, or buf with: npm ci --prefix tools/buf" >&2
  exit 1
fi

"$buf" lint proto
echo "proto-check: buf lint: clean"

protos=':(glob)proto/**/*.proto'
if ! git diff --quiet HEAD -- "$protos" || [ -n "$(git ls-files --others --exclude-standard -- "$protos")" ]; then
  against="$(git rev-parse HEAD)"
  why="HEAD (the work tree changes proto/)"
else
  last="$(git log -1 --format=%H HEAD -- "$protos")"
  if ! against="$(git rev-parse --verify --quiet "$last^")"; then
    if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
      echo "proto-check: the history ends before $last; fetch it (git fetch --unshallow)" >&2
      exit 1
    fi
    echo "proto-check: $last introduced proto/; nothing to compare with"
    exit 0
  fi
  why="$(git rev-parse --short "$against") (before $(git rev-parse --short "$last"), the last commit that changed a .proto file)"
fi
if ! git ls-tree -r --name-only "$against" -- proto | grep '\.proto$' >/dev/null; then
  echo "proto-check: no .proto files at $against; nothing to compare with"
  exit 0
fi
"$buf" breaking proto --against ".git#ref=$against,subdir=proto"
echo "proto-check: buf breaking against $why: compatible"

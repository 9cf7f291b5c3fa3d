"""Reads deploy/kubernetes/sidecar.yaml as the kubelet would for the Warden container:
writes the policy ConfigMap's files into DIR (keys mapped to paths by the pod's volume items)
and prints the container's WARDEN_* environment, one NAME=VALUE a line.

    python3 .ci/deploy_pod.py deploy/kubernetes/sidecar.yaml DIR
"""
import os
import sys

import yaml

manifest, out = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(manifest)) if d]
maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
pod = next(d for d in docs if d["kind"] == "Pod")
spec = pod["spec"]
warden = next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "warden")
policies_mount = next(m for m in warden["volumeMounts"] if m["mountPath"] == "/etc/warden/policies")
volume = next(v for v in spec["volumes"] if v["name"] == policies_mount["name"])
data = maps[volume["configMap"]["name"]]
items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]
for item in items:
    path = os.path.join(out, item["path"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data[item["key"]])
for var in warden.get("env", []):
    print(f"{var['name']}={var['value']}")

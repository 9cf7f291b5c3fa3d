"""Checks a `kubectl kustomize` rendering of deploy/kubernetes: the parts that must agree do,
and the built-in kinds are written out for kubernetes-validate (the ServiceMonitor is a CRD
without a schema here, so it is checked by hand).

usage: check_kustomize.py RENDERED.yaml BUILTIN_OUT.yaml
"""

import sys

import yaml


def fail(message):
    print(f"check_kustomize: {sys.argv[1]}: {message}", file=sys.stderr)
    sys.exit(1)


def matches(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


def main():
    rendered, out = sys.argv[1], sys.argv[2]
    with open(rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    for kind in ["Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor", "NetworkPolicy"]:
        if len(by_kind.get(kind, [])) != 1:
            fail(f"expected one {kind}, found {len(by_kind.get(kind, []))}")
    deployment = by_kind["Deployment"][0]
    service = by_kind["Service"][0]
    pdb = by_kind["PodDisruptionBudget"][0]
    monitor = by_kind["ServiceMonitor"][0]
    policy = by_kind["NetworkPolicy"][0]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    if not matches(deployment["spec"]["selector"]["matchLabels"], labels):
        fail("the Deployment's selector does not match its pods")
    if not matches(service["spec"]["selector"], labels):
        fail("the Service does not select Warden's pods")
    if not matches(pdb["spec"]["selector"]["matchLabels"], labels):
        fail("the PodDisruptionBudget does not select Warden's pods")
    if not matches(policy["spec"]["podSelector"]["matchLabels"], labels):
        fail("the NetworkPolicy does not select Warden's pods")
    if not matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"]):
        fail("the ServiceMonitor does not select the Service")
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        if endpoint["port"] not in service_ports:
            fail(f"the ServiceMonitor scrapes port `{endpoint['port']}`, which the Service lacks")
        if endpoint.get("path") != "/metrics":
            fail("the ServiceMonitor does not scrape /metrics")
    container_ports = set()
    warden = None
    for container in pod["spec"]["containers"]:
        container_ports |= {p["name"] for p in container.get("ports", [])}
        if container["name"] == "warden":
            warden = container
    if warden is None:
        fail("no container named warden")
    for port in service["spec"]["ports"]:
        if port["targetPort"] not in container_ports:
            fail(f"the Service targets port `{port['targetPort']}`, which no container has")
    if "preStop" not in warden.get("lifecycle", {}):
        fail("Warden has no preStop delay")
    env = {e["name"]: e.get("value") for e in warden.get("env", [])}
    for key in ["WARDEN_BUNDLE", "WARDEN_BUNDLE_PUBLIC_KEYS", "WARDEN_RATE_LIMIT_REDIS",
                "WARDEN_REVOCATIONS_REDIS"]:
        if key not in env:
            fail(f"Warden's environment lacks {key}")
    builtin = [d for d in docs if d["kind"] != "ServiceMonitor"]
    with open(out, "w") as f:
        yaml.safe_dump_all(builtin, f)
    print(f"{rendered}: {len(docs)} resources agree; {len(builtin)} written for kubernetes-validate")


main()

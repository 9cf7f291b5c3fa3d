"""Checks what can be checked of the mesh examples without Istio or Envoy: every file parses
as YAML, and the parts that wire Warden's gRPC ext_authz in say what docs/gateways.md says."""

import sys

import yaml


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def fail(message):
    sys.exit(f"{message}")


[operator] = load("deploy/istio/mesh-config.yaml")
providers = operator["spec"]["meshConfig"]["extensionProviders"]
warden = next((p for p in providers if p["name"] == "warden"), None) or fail("no `warden` provider")
grpc = warden.get("envoyExtAuthzGrpc") or fail("the provider is not envoyExtAuthzGrpc")
if grpc["port"] != 9191 or grpc.get("failOpen", False):
    fail("the provider must call port 9191 and never fail open")

policies = load("deploy/istio/authorization-policy.yaml")
custom = [p for p in policies if p["kind"] == "AuthorizationPolicy" and p["spec"].get("action") == "CUSTOM"]
if not custom or any(p["spec"]["provider"]["name"] != "warden" for p in custom):
    fail("no CUSTOM AuthorizationPolicy naming the `warden` provider")
for p in policies:
    if p["apiVersion"] not in ("security.istio.io/v1", "security.istio.io/v1beta1"):
        fail(f"{p['metadata']['name']}: unexpected apiVersion {p['apiVersion']}")

service = next(d for d in load("deploy/istio/warden.yaml") if d["kind"] == "Service")
if service["spec"]["ports"][0]["port"] != grpc["port"]:
    fail("the Service's port is not the provider's")

[envoy] = load("deploy/envoy/envoy-grpc.yaml")
listener = envoy["static_resources"]["listeners"][0]
manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
ext_authz = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.ext_authz")
config = ext_authz["typed_config"]
if config.get("failure_mode_allow") or "grpc_service" not in config:
    fail("envoy-grpc.yaml: ext_authz must use grpc_service and never fail open")
if not manager.get("use_remote_address"):
    fail("envoy-grpc.yaml: use_remote_address must be on (the source peer is the client)")
cluster = next(c for c in envoy["static_resources"]["clusters"] if c["name"] == "warden")
if "http2_protocol_options" not in str(cluster):
    fail("envoy-grpc.yaml: the warden cluster must speak HTTP/2")
for path in ("deploy/envoy/envoy.yaml",):
    load(path)

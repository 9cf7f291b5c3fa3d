"""Sends Envoy-shaped ext_authz CheckRequests to Warden with grpcio and checks the answers.

Usage: check.py ADDRESS  (the cases come as JSON on standard input; see
tests/integration/grpc/python.rs). Exits 1 with one line per failed case.
       check.py frame OUT METHOD PATH [NAME=VALUE ...]  (one framed CheckRequest, for h2load)
"""

import json
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))


def compile_protos(out):
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    protos = os.path.join(HERE, "protos")
    files = []
    for root, _, names in os.walk(protos):
        files += [os.path.relpath(os.path.join(root, n), protos) for n in names if n.endswith(".proto")]
    args = ["protoc", f"-I{protos}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(args + sorted(files)) != 0:
        sys.exit("protoc failed on tests/grpc/protos")
    sys.path.insert(0, out)


def peer(address_pb2, attribute_context_pb2, ip, port, principal=""):
    return attribute_context_pb2.AttributeContext.Peer(
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address=ip, port_value=port)),
        principal=principal,
    )


def run(address, cases):
    out = tempfile.mkdtemp(prefix="warden-grpc-")
    compile_protos(out)
    from envoy.config.core.v3 import address_pb2
    from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc

    # Over a Unix socket grpcio sends the socket's path as `:authority`, which is no authority
    # an HTTP/2 server accepts (the stream is reset); name one, as a client of any such server must.
    options = [("grpc.default_authority", "localhost")] if address.startswith("unix:") else []
    channel = grpc.insecure_channel(address, options=options)
    stub = external_auth_pb2_grpc.AuthorizationStub(channel)
    failures = []
    for case in cases:
        name = case["name"]
        headers = {
            ":method": case["method"],
            ":path": case["path"],
            ":authority": "photos.example",
            "x-request-id": "py-" + name,
            "user-agent": "python-grpcio",
        }
        headers.update(case.get("headers", {}))
        http = attribute_context_pb2.AttributeContext.HttpRequest(
            id="1",
            method=case["method"],
            headers=headers,
            path=case["path"],
            host="photos.example",
            scheme="http",
            protocol="HTTP/1.1",
        )
        attributes = attribute_context_pb2.AttributeContext(
            source=peer(address_pb2, attribute_context_pb2, case.get("source", "192.0.2.7"), 50123),
            destination=peer(address_pb2, attribute_context_pb2, "10.0.0.9", 8080),
            request=attribute_context_pb2.AttributeContext.Request(http=http),
            context_extensions=case.get("extensions", {}),
        )
        request = external_auth_pb2.CheckRequest(attributes=attributes)
        timeout = case.get("deadline_s", 5.0)
        try:
            response = stub.Check(request, timeout=timeout)
        except grpc.RpcError as error:
            got = {"error": error.code().name}
        else:
            kind = response.WhichOneof("http_response")
            got = {"code": response.status.code}
            if kind == "ok_response":
                got["http"] = 200
                got["upstream"] = {h.header.key.lower(): h.header.value for h in response.ok_response.headers}
                got["removed"] = sorted(response.ok_response.headers_to_remove)
            elif kind == "denied_response":
                got["http"] = response.denied_response.status.code
                got["denied_headers"] = {
                    h.header.key.lower(): h.header.value for h in response.denied_response.headers
                }
        # A deadline may run out before the answer arrives, or not: either outcome is right,
        # an answer other than the expected one never is.
        wants = case.get("expect_one_of") or [case["expect"]]
        misses = [compare(name, want, got) for want in wants]
        if all(misses):
            failures += misses[0]
        print(f"{name}: {json.dumps(got, sort_keys=True)}")
    return failures


def compare(name, want, got):
    failures = []
    for key, value in want.items():
        if key in ("upstream", "denied_headers"):
            for header, text in value.items():
                if got.get(key, {}).get(header) != text:
                    failures.append(f"{name}: {key} {header}: want {text!r}, got {got!r}")
        elif got.get(key) != value:
            failures.append(f"{name}: {key}: want {value!r}, got {got!r}")
    return failures


def frame(out_path, method, path, headers):
    """Writes one CheckRequest as a gRPC message frame, for h2load (benches/grpc.sh)."""
    out = tempfile.mkdtemp(prefix="warden-grpc-")
    compile_protos(out)
    from envoy.config.core.v3 import address_pb2
    from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2

    http = attribute_context_pb2.AttributeContext.HttpRequest(
        method=method, path=path, host="photos.example", headers=headers
    )
    request = external_auth_pb2.CheckRequest(
        attributes=attribute_context_pb2.AttributeContext(
            source=peer(address_pb2, attribute_context_pb2, "192.0.2.7", 50123),
            request=attribute_context_pb2.AttributeContext.Request(http=http),
        )
    )
    body = request.SerializeToString()
    with open(out_path, "wb") as f:
        f.write(b"\x00" + len(body).to_bytes(4, "big") + body)


if __name__ == "__main__":
    if sys.argv[1] == "frame":
        # check.py frame OUT METHOD PATH [NAME=VALUE ...]
        frame(sys.argv[2], sys.argv[3], sys.argv[4], dict(h.split("=", 1) for h in sys.argv[5:]))
        sys.exit(0)
    failures = run(sys.argv[1], json.load(sys.stdin))
    for failure in failures:
        print("FAILED " + failure, file=sys.stderr)
    sys.exit(1 if failures else 0)

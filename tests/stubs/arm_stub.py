"""An in-memory Azure Resource Manager stub over TLS (stdlib only) for azure-mgmt-*.

Why: no ARM emulator exists. This stub stores resource groups and any resource under them
(VNets, NSGs, public IPs, NICs, VMs), answers PUT/DELETE/POST actions as long-running
operations (`Azure-AsyncOperation`, `Retry-After: 0`), records every request (tests assert
the exact Spot fields sent), and can fail a VM create the way Azure does: the operation ends
`Failed` with `error.code = AllocationFailed` (or any code).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

SUB = r"/subscriptions/(?P<s>[^/]+)"
RG = SUB + r"/resource[gG]roups/(?P<rg>[^/]+)"
RES = RG + r"/providers/(?P<ns>[^/]+)/(?P<type>[^/]+)/(?P<name>[^/]+)"


def make_cert(directory: Path) -> tuple[str, str]:
    """A self-signed cert for 127.0.0.1 (Azure SDKs refuse bearer tokens over plain http)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = directory / "arm-cert.pem", directory / "arm-key.pem"
    if cert_path.exists():
        return str(cert_path), str(key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


class ARMStub:
    def __init__(self) -> None:
        self.groups: dict[str, dict] = {}  # lower(rg) -> body
        self.resources: dict[str, dict] = {}  # lower(id) -> body
        self.ops: dict[str, dict] = {}
        self.log: list[tuple[str, str, Any]] = []
        self.create_faults: list[dict] = []
        self.polls_before_done = 1
        self.lock = threading.RLock()
        self.seq = itertools.count(1)
        self._srv: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, certfile: str, keyfile: str) -> ARMStub:
        stub = self

        class Handler(_Handler):
            pass

        Handler.stub = stub
        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._srv.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        self._srv.socket = ctx.wrap_socket(self._srv.socket, server_side=True)
        self.port = self._srv.server_address[1]
        threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._srv:
            self._srv.shutdown()
            self._srv.server_close()

    def fail_vm_create(self, code: str = "AllocationFailed", *, zone: str | None = None,
                       http: int | None = None, times: int = 1) -> None:
        """Fail the next VM creates: in the LRO (default) or, with `http`, at once."""
        self.create_faults.append({"code": code, "zone": zone, "http": http, "times": times})

    def evict(self, vm_name: str) -> None:
        """A spot eviction with evictionPolicy Delete: the VM is gone, its group stays."""
        with self.lock:
            for rid in [r for r in self.resources if r.endswith(f"/virtualmachines/{vm_name.lower()}")]:
                del self.resources[rid]

    def vms(self) -> list[dict]:
        return [r for r in self.resources.values() if r["type"] == "Microsoft.Compute/virtualMachines"]

    def requests(self, method: str, pattern: str) -> list[Any]:
        return [b for m, p, b in self.log if m == method and re.search(pattern, p, re.I)]

    def _newop(self, base: str, error: tuple[str, str] | None = None) -> str:
        oid = f"op{next(self.seq)}"
        self.ops[oid] = {"left": self.polls_before_done, "error": error}
        return f"{base}/providers/Microsoft.Compute/locations/eastus/operations/{oid}?api-version=2024-07-01"

    def _take_fault(self, body: dict) -> dict | None:
        zones = body.get("zones") or [None]
        for f in self.create_faults:
            if f["times"] > 0 and f["zone"] in (None, zones[0]):
                f["times"] -= 1
                return f
        return None


class _Handler(BaseHTTPRequestHandler):
    stub: ARMStub
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a: Any) -> None:
        pass

    def _send(self, code: int, obj: Any = None, headers: tuple = ()) -> None:
        b = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(b)

    def _err(self, code: int, ecode: str, message: str) -> None:
        retry = (("Retry-After", "0"),) if code == 429 else ()  # ARM says when to come back
        self._send(code, {"error": {"code": ecode, "message": message}}, retry)

    def _lro(self, code: int, body: Any, error: tuple[str, str] | None = None) -> None:
        url = self.stub._newop(f"https://{self.headers['Host']}", error)
        self._send(code, body, (("Azure-AsyncOperation", url), ("Location", url), ("Retry-After", "0")))

    def do_GET(self) -> None:
        self._route("GET")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def _route(self, method: str) -> None:  # noqa: C901 - a router
        s = self.stub
        path, _, qs = self.path.partition("?")
        query = {k: v[0] for k, v in parse_qs(qs).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        with s.lock:
            s.log.append((method, path, body))
            if m := re.fullmatch(r"/providers/Microsoft\.Compute/locations/[^/]+/operations/(?P<o>[^/]+)", path):
                o = s.ops[m["o"]]
                if o["left"] > 0:
                    o["left"] -= 1
                    return self._send(200, {"status": "InProgress"}, (("Retry-After", "0"),))
                if o["error"]:
                    return self._send(200, {"status": "Failed", "error": {"code": o["error"][0],
                                                                          "message": o["error"][1]}})
                return self._send(200, {"status": "Succeeded"})
            if m := re.fullmatch(SUB + r"/resource[gG]roups", path):
                f = re.search(r"tagName eq '([^']+)' and tagValue eq '([^']+)'", query.get("$filter", ""))
                items = [g for g in s.groups.values()
                         if not f or (g.get("tags") or {}).get(f.group(1)) == f.group(2)]
                return self._send(200, {"value": items})
            if m := re.fullmatch(RG, path):
                key = m["rg"].lower()
                if method == "PUT":
                    g = {"id": path, "name": m["rg"], "location": body.get("location"),
                         "tags": body.get("tags") or {}, "properties": {"provisioningState": "Succeeded"}}
                    created = key not in s.groups
                    s.groups[key] = g
                    return self._send(201 if created else 200, g)
                if key not in s.groups:
                    return self._err(404, "ResourceGroupNotFound", f"Resource group '{m['rg']}' could not be found.")
                if method == "HEAD":
                    return self._send(204)
                if method == "GET":
                    return self._send(200, s.groups[key])
                if method == "DELETE":
                    del s.groups[key]
                    prefix = path.lower() + "/"
                    for rid in [r for r in s.resources if r.startswith(prefix)]:
                        del s.resources[rid]
                    return self._lro(202, None)
            if m := re.fullmatch(RG + r"/providers/Microsoft\.Compute/virtualMachines", path):
                prefix = (path + "/").lower()
                return self._send(200, {"value": [v for k, v in s.resources.items() if k.startswith(prefix)]})
            if m := re.fullmatch(RES + r"(?P<sub>/[^/]+(?:/[^/]+)?)?", path):
                return self._resource(method, m, path, body)
            return self._err(404, "NoRoute", f"{method} {path}")

    def _resource(self, method: str, m: re.Match, path: str, body: Any) -> None:
        s = self.stub
        if m["rg"].lower() not in s.groups:
            return self._err(404, "ResourceGroupNotFound", f"Resource group '{m['rg']}' could not be found.")
        sub = m["sub"] or ""
        rid = (path[: len(path) - len(sub)] if sub else path)
        key = rid.lower()
        res = s.resources.get(key)
        rtype = f"{m['ns']}/{m['type']}"
        if method == "PUT" and not sub:
            fault = s._take_fault(body) if rtype == "Microsoft.Compute/virtualMachines" else None
            if fault and fault["http"]:
                return self._err(fault["http"], fault["code"], f"injected {fault['code']}")
            new = dict(body, id=rid, name=m["name"], type=rtype)
            props = new.setdefault("properties", {})
            props["provisioningState"] = "Succeeded"
            n = next(s.seq)
            if m["type"] == "publicIPAddresses":
                props["ipAddress"] = f"20.1.{n // 250}.{n % 250 + 1}"
            if m["type"] == "networkInterfaces":
                for i, cfg in enumerate(props.get("ipConfigurations", [])):
                    cfg.setdefault("properties", {})["privateIPAddress"] = f"10.0.0.{(n + i) % 250 + 4}"
            if m["type"] == "virtualMachines":
                props["vmId"] = f"0000-{n}"
                new["_power"] = "PowerState/running"
            if fault:  # Azure keeps a failed VM resource around in state Failed
                props["provisioningState"] = "Failed"
            s.resources[key] = new
            return self._lro(201, _public(new), (fault["code"], f"injected {fault['code']}") if fault else None)
        if res is None:
            return self._err(404, "ResourceNotFound", f"The Resource '{rtype}/{m['name']}' was not found.")
        if method == "GET" and sub == "/instanceView":
            return self._send(200, {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": res["_power"]}]})
        if method == "GET":
            out = _public(res)
            if m["type"] == "virtualMachines" and "instanceView" in (self.path.partition("?")[2]):
                out["properties"]["instanceView"] = {"statuses": [
                    {"code": "ProvisioningState/succeeded"}, {"code": res["_power"]}]}
            return self._send(200, out)
        if method == "DELETE":
            del s.resources[key]
            return self._lro(202, None)
        if method == "POST" and m["type"] == "virtualMachines":
            res["_power"] = {"/powerOff": "PowerState/stopped", "/start": "PowerState/running",
                             "/deallocate": "PowerState/deallocated"}[sub]
            return self._lro(202, None)
        return self._err(404, "NoRoute", f"{method} {path}")


def _public(res: dict) -> dict:
    return json.loads(json.dumps({k: v for k, v in res.items() if not k.startswith("_")}))

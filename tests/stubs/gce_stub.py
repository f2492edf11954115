"""An in-memory GCE REST stub (stdlib only) for google-cloud-compute over real HTTP.

Why: no usable GCE emulator exists. This stub speaks the few compute/v1 REST routes our
provisioner uses, records every request (so tests assert the exact spot/scheduling,
accelerator and label fields sent) and answers stock-outs the way GCE does: an insert whose
*operation* ends with `error.errors[0].code = ZONE_RESOURCE_POOL_EXHAUSTED` and HTTP 503.

Routes: zones/{z}/instances (insert, list with a label filter, get, delete, stop, start),
aggregated/instances, zones/{z}/operations (get, wait, list), global/firewalls (insert, get,
delete), global/operations (get, wait).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

P = "/compute/v1/projects/(?P<p>[^/]+)"
ZONE = P + "/zones/(?P<z>[^/]+)"
_FILTER = re.compile(r'labels\.([\w-]+)\s*=\s*"?([^"\s)]+)"?')


class GCEStub:
    def __init__(self) -> None:
        self.instances: dict[tuple[str, str, str], dict] = {}  # (project, zone, name)
        self.firewalls: dict[tuple[str, str], dict] = {}
        self.ops: dict[str, dict] = {}
        self.log: list[tuple[str, str, Any]] = []  # (method, path, body)
        self.insert_faults: list[dict] = []
        self.lock = threading.RLock()
        self.seq = itertools.count(1)
        self._srv: ThreadingHTTPServer | None = None
        self.port = 0

    # ---- test controls ----

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GCEStub:
        stub = self

        class Handler(_Handler):
            pass

        Handler.stub = stub
        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._srv.daemon_threads = True
        self.port = self._srv.server_address[1]
        threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._srv:
            self._srv.shutdown()
            self._srv.server_close()

    def fail_insert(self, code: str = "ZONE_RESOURCE_POOL_EXHAUSTED", *, zone: str | None = None,
                    http: int | None = None, reason: str = "", times: int = 1,
                    message: str | None = None) -> None:
        """Fail the next inserts: via the operation (default, as stock-outs do) or, with
        `http`, as an immediate HTTP error (quota, invalid, auth)."""
        self.insert_faults.append({"code": code, "zone": zone, "http": http, "reason": reason,
                                   "times": times, "message": message or f"injected {code}"})

    def preempt(self, zone: str, name: str, project: str = "proj") -> None:
        """Reclaim a spot VM: per its termination action, stop (TERMINATED) or delete it."""
        with self.lock:
            inst = self.instances[(project, zone, name)]
            if (inst.get("scheduling") or {}).get("instanceTerminationAction") == "DELETE":
                del self.instances[(project, zone, name)]
            else:
                inst["status"] = "TERMINATED"
            o = self._op(project, zone, "compute.instances.preempted", inst["selfLink"])
            o["status"] = "DONE"

    def requests(self, method: str, pattern: str) -> list[Any]:
        return [b for m, p, b in self.log if m == method and re.search(pattern, p)]

    # ---- internals ----

    def _op(self, p: str, z: str | None, kind: str, target: str, error: dict | None = None) -> dict:
        name = f"operation-{next(self.seq)}"
        scope = f"zones/{z}" if z else "global"
        o = {"kind": "compute#operation", "id": str(next(self.seq)), "name": name,
             "operationType": kind, "targetLink": target, "status": "RUNNING", "progress": 0,
             "selfLink": f"{self.url}/compute/v1/projects/{p}/{scope}/operations/{name}"}
        if z:
            o["zone"] = z
        if error:
            o["error"] = {"errors": [{"code": error["code"], "message": error["message"]}]}
            o["httpErrorStatusCode"] = 503 if "EXHAUSTED" in error["code"] or "STOCKOUT" in error["code"] else 403
            o["httpErrorMessage"] = error["message"]
        self.ops[name] = o
        return o

    def _take_fault(self, zone: str) -> dict | None:
        for f in self.insert_faults:
            if f["times"] > 0 and f["zone"] in (None, zone):
                f["times"] -= 1
                return f
        return None


def _tick(inst: dict) -> dict:
    """Transient states settle on the next read (a real VM gets there in seconds)."""
    inst["status"] = {"PROVISIONING": "RUNNING", "STAGING": "RUNNING",
                      "STOPPING": "TERMINATED"}.get(inst["status"], inst["status"])
    return inst


class _Handler(BaseHTTPRequestHandler):
    stub: GCEStub
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a: Any) -> None:
        pass

    def _send(self, code: int, obj: Any) -> None:
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def _err(self, code: int, message: str, reason: str) -> None:
        self._send(code, {"error": {"code": code, "message": message,
                                    "errors": [{"reason": reason, "message": message, "domain": "global"}]}})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def _route(self, method: str) -> None:  # noqa: C901 - a router
        s = self.stub
        path, _, qs = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        from urllib.parse import parse_qs

        query = {k: v[0] for k, v in parse_qs(qs).items()}
        with s.lock:
            s.log.append((method, path, body))
            if m := re.fullmatch(ZONE + "/instances", path):
                p, z = m["p"], m["z"]
                if method == "POST":
                    return self._insert(p, z, path, body)
                want = dict(_FILTER.findall(query.get("filter", "")))
                items = [_tick(v) for (pp, zz, _), v in s.instances.items() if (pp, zz) == (p, z)
                         and all(v.get("labels", {}).get(k) == val for k, val in want.items())]
                return self._send(200, {"kind": "compute#instanceList", "items": items})
            if m := re.fullmatch(P + "/aggregated/instances", path):
                want = dict(_FILTER.findall(query.get("filter", "")))
                out: dict[str, dict] = {}
                for (pp, zz, _), v in s.instances.items():
                    if pp == m["p"] and all(v.get("labels", {}).get(k) == val for k, val in want.items()):
                        out.setdefault(f"zones/{zz}", {"instances": []})["instances"].append(_tick(v))
                return self._send(200, {"kind": "compute#instanceAggregatedList", "items": out})
            if m := re.fullmatch(ZONE + "/instances/(?P<n>[^/]+)(?P<verb>/stop|/start)?", path):
                key = (m["p"], m["z"], m["n"])
                inst = s.instances.get(key)
                if inst is None:
                    return self._err(404, f"The resource '{path}' was not found", "notFound")
                if method == "GET":
                    return self._send(200, _tick(inst))
                if method == "DELETE":
                    del s.instances[key]
                    return self._send(200, s._op(m["p"], m["z"], "delete", inst["selfLink"]))
                inst["status"] = "STOPPING" if m["verb"] == "/stop" else "STAGING"
                return self._send(200, s._op(m["p"], m["z"], m["verb"][1:], inst["selfLink"]))
            if m := re.fullmatch(ZONE + "/operations", path):
                kind = re.search(r'operationType\s*=\s*"?([\w.]+)', query.get("filter", ""))
                items = [o for o in s.ops.values() if o.get("zone") == m["z"]
                         and (not kind or o["operationType"] == kind.group(1))]
                return self._send(200, {"kind": "compute#operationList", "items": items})
            if m := re.fullmatch(P + r"/(?:zones/[^/]+|global)/operations/(?P<o>[^/]+)(?P<wait>/wait)?", path):
                o = s.ops[m["o"]]
                o["status"], o["progress"] = "DONE", 100
                return self._send(200, o)
            if m := re.fullmatch(P + "/global/firewalls", path):
                if method == "POST":
                    key = (m["p"], body["name"])
                    if key in s.firewalls:
                        return self._err(409, f"The resource '{body['name']}' already exists", "alreadyExists")
                    link = f"{path}/{body['name']}"
                    s.firewalls[key] = dict(body, selfLink=link)
                    return self._send(200, s._op(m["p"], None, "insert", link))
                return self._send(200, {"items": [v for (pp, _), v in s.firewalls.items() if pp == m["p"]]})
            if m := re.fullmatch(P + "/global/firewalls/(?P<n>[^/]+)", path):
                fw = s.firewalls.get((m["p"], m["n"]))
                if fw is None:
                    return self._err(404, f"The resource '{path}' was not found", "notFound")
                if method == "GET":
                    return self._send(200, fw)
                if method == "PATCH":
                    fw.update(body)
                    return self._send(200, s._op(m["p"], None, "patch", fw["selfLink"]))
                if method == "DELETE":
                    del s.firewalls[(m["p"], m["n"])]
                    return self._send(200, s._op(m["p"], None, "delete", fw["selfLink"]))
            return self._err(404, f"no route {method} {path}", "notFound")

    def _insert(self, p: str, z: str, path: str, body: dict) -> None:
        s = self.stub
        fault = s._take_fault(z)
        if fault and fault["http"]:
            return self._err(fault["http"], fault["message"], fault["reason"] or fault["code"])
        link = f"{path}/{body['name']}"
        if fault:
            return self._send(200, s._op(p, z, "insert", link, error=fault))
        if (p, z, body["name"]) in s.instances:
            return self._err(409, f"The resource '{link}' already exists", "alreadyExists")
        n = len(s.instances) + 2
        inst = dict(body, kind="compute#instance", id=str(next(s.seq)), status="PROVISIONING",
                    zone=f"{s.url}/compute/v1/projects/{p}/zones/{z}", selfLink=f"{s.url}{link}")
        nics = [dict(nic) for nic in body.get("networkInterfaces", [{}])]
        for nic in nics:
            nic["networkIP"] = f"10.128.{n // 250}.{n % 250 + 2}"
            if "accessConfigs" in nic:
                nic["accessConfigs"] = [dict(ac, natIP=f"34.1.{n // 250}.{n % 250 + 2}")
                                        for ac in nic["accessConfigs"]]
        inst["networkInterfaces"] = nics
        s.instances[(p, z, body["name"])] = inst
        return self._send(200, s._op(p, z, "insert", inst["selfLink"]))

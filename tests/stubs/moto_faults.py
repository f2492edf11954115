"""moto's EC2 server over real HTTP, wrapped with a fault injector and a request log.

Why a wrapper: moto has no capacity errors; the injector answers chosen EC2 actions with an
EC2-shaped error (4xx, so botocore does not hide it behind its own retries). The request log
lets tests assert the exact parameters our provisioner sent (e.g. the spot market options).

In-process use (tests): `srv = MotoFaultServer().start(); srv.fault("RunInstances",
"InsufficientInstanceCapacity", match="Placement.AvailabilityZone=us-east-1a")`.
Out-of-process: `python tests/stubs/moto_faults.py PORT`, then
`POST /_fault?action=RunInstances&code=...&match=...&times=1` (or `?clear=1`).
"""

from __future__ import annotations

import io
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass


@dataclass
class Fault:
    action: str
    code: str
    match: str = ""
    status: int = 400
    times: int = 1


class MotoFaultServer:
    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app

        self.app = DomainDispatcherApplication(create_backend_app)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, dict[str, str]]] = []  # (Action, params)
        self._lock = threading.Lock()
        self._server = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> MotoFaultServer:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class KeepAlive(WSGIRequestHandler):
            # HTTP/1.1 keeps botocore's connection open (a TCP handshake per call otherwise),
            # and no Nagle: a small response would wait for the client's delayed ACK.
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

        self._server = make_server("127.0.0.1", port, self._wsgi, threaded=True,
                                   request_handler=KeepAlive)
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Forget every resource (moto's reset) and every armed fault and logged request."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"),
                               timeout=10).read()
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def clear(self) -> None:
        """Disarm faults and forget logged requests (resources stay)."""
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def purge_terminated(self) -> int:
        """Drop terminated instances from moto's memory (in-process servers only).

        moto filters DescribeInstances by walking every instance it remembers, and terminated
        ones stay forever; purging them keeps a long-lived server as fast as a fresh one.
        """
        from moto.backends import get_backend

        n = 0
        for account in dict.values(get_backend("ec2")):
            for backend in dict.values(account):  # only regions already created
                for rid, res in list(backend.reservations.items()):
                    if all(i.state == "terminated" for i in res.instances):
                        del backend.reservations[rid]
                        n += len(res.instances)
        return n

    def fault(self, action: str, code: str, match: str = "", status: int = 400, times: int = 1) -> None:
        """Answer the next `times` calls of `action` whose decoded body contains `match`."""
        with self._lock:
            self.faults.append(Fault(action, code, match, status, times))

    def calls(self, action: str) -> list[dict[str, str]]:
        return [p for a, p in self.requests if a == action]

    def _wsgi(self, environ, start_response):
        if environ["PATH_INFO"] == "/_fault":
            q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
            if q.get("clear"):
                with self._lock:
                    self.faults.clear()
            else:
                self.fault(q["action"], q["code"], q.get("match", ""), int(q.get("status", 400)),
                           int(q.get("times", 1)))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n) if n else b""
        environ["wsgi.input"] = io.BytesIO(body)
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        action = params.get("Action", "")
        text = urllib.parse.unquote_plus(body.decode("utf-8", "replace"))
        with self._lock:
            if action:
                self.requests.append((action, params))
            hit = next((f for f in self.faults
                        if f.times > 0 and f.action == action and f.match in text), None)
            if hit:
                hit.times -= 1
        if hit:
            xml = (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{hit.code}'
                   f"</Code><Message>injected fault</Message></Error></Errors>"
                   f"<RequestID>injected</RequestID></Response>").encode()
            start_response(f"{hit.status} ERR", [("Content-Type", "text/xml"),
                                                 ("Content-Length", str(len(xml)))])
            return [xml]
        return self.app(environ, start_response)


if __name__ == "__main__":
    import sys
    import time

    srv = MotoFaultServer().start(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print("listening", srv.port, flush=True)
    while True:
        time.sleep(3600)

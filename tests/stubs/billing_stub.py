"""A local HTTP stub of the GCP APIs a catalog refresh reads, serving recorded pages.

Serves the Cloud Billing Catalog `GET /v1/services/<id>/skus` and Compute Engine
`GET /compute/v1/projects/<p>/aggregated/{machineTypes,acceleratorTypes}` from the JSON pages
in tests/fixtures/refresh/gcp, following `pageToken` -> the page whose predecessor's
`nextPageToken` it is. It records every request and can answer the next N requests to a path
with 429 RESOURCE_EXHAUSTED (throttling) or 403. Port 0; stop() in teardown.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "refresh"


class PagedJSONStub:
    """Routes (regex on the path) -> a list of recorded pages, paged by a token."""

    token_param = "pageToken"
    next_key = "nextPageToken"

    def __init__(self, routes: dict[str, list[dict]], public_host: str = "") -> None:
        self.routes = [(re.compile(p), pages) for p, pages in routes.items()]
        self.public_host = public_host  # written into recorded links; served as our own URL
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.faults: list[list] = []  # [path regex, status, body, remaining]
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control
    def start(self, ssl_context: ssl.SSLContext | None = None) -> PagedJSONStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                status, body = stub.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https" if ssl_context is not None else "http"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}"

    def fault(self, path_regex: str, status: int = 429, times: int = 1,
              body: dict | None = None) -> None:
        """Answer the next `times` requests matching `path_regex` with an error."""
        body = body or {"error": {"code": status, "message": "Quota exceeded (stub).",
                                  "status": {429: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED"}
                                  .get(status, "UNAVAILABLE")}}
        with self._lock:
            self.faults.append([re.compile(path_regex), status, body, times])

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    # -- serving
    def answer(self, raw_path: str) -> tuple[int, dict]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        with self._lock:
            self.requests.append((parts.path, query))
            for f in self.faults:
                if f[3] > 0 and f[0].search(parts.path):
                    f[3] -= 1
                    return f[1], f[2]
        for pattern, pages in self.routes:
            if pattern.fullmatch(parts.path):
                body = self.page(pages, query)
                if self.public_host:
                    body = json.loads(json.dumps(body).replace(self.public_host, self.url))
                return 200, body
        return 404, {"error": {"code": 404, "message": f"stub: no route {parts.path}",
                               "status": "NOT_FOUND"}}

    def page(self, pages: list[dict], query: dict[str, list[str]]) -> dict:
        token = (query.get(self.token_param) or [""])[0]
        if not token:
            return pages[0]
        for i, p in enumerate(pages[:-1]):
            if p.get(self.next_key) == token:
                return pages[i + 1]
        return {"error": {"code": 400, "message": f"bad page token {token!r}"}}


def load_pages(directory: Path, stem: str) -> list[dict]:
    files = sorted(directory.glob(f"{stem}_page*.json"),
                   key=lambda p: int(p.stem.rsplit("page", 1)[1]))
    return [json.loads(f.read_text()) for f in files]


def gcp_stub(fixtures: Path = FIXTURES / "gcp") -> PagedJSONStub:
    """The Billing + Compute stub over the recorded GCP pages (not started)."""
    return PagedJSONStub({
        r"/v1/services/6F81-5844-456A/skus": load_pages(fixtures, "skus"),
        r"/compute/v1/projects/[^/]+/aggregated/machineTypes": load_pages(fixtures, "machine_types"),
        r"/compute/v1/projects/[^/]+/aggregated/acceleratorTypes":
            load_pages(fixtures, "accelerator_types"),
    })


def small_catalog_dir(target: Path, cloud: str, keep) -> Path:
    """A `SKYBROKER_CATALOG_DIR` holding the shipped `<cloud>.csv` rows where `keep(row)`.

    Why: a partial refresh carries the catalog in use over; a few hundred shipped rows test
    that as well as 57k do, without parsing and rewriting 57k rows in every test.
    """
    import csv

    shipped = FIXTURES.parent.parent.parent / "catalogs"
    target.mkdir(parents=True, exist_ok=True)
    with open(shipped / f"{cloud}.csv", newline="") as src, \
            open(target / f"{cloud}.csv", "w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(r for r in reader if keep(r))
    meta = json.loads((shipped / "SOURCES.json").read_text()).get(cloud, {})
    (target / "SOURCES.json").write_text(json.dumps({cloud: meta}))
    return target

"""What every cloud's refresher shares: retries on throttling, progress, clear failures.

Why: price APIs page through thousands of records and throttle bursts (AWS `Throttling`,
Google 429 / RESOURCE_EXHAUSTED, Azure 429). A refresh must ride those out with backoff,
show that it is alive, and when it does fail, say in one line why (credentials, endpoint,
throttling) while the old catalog stays in place.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from skybroker.errors import CatalogError, CredentialsError, NotSupportedError

T = TypeVar("T")

_THROTTLE_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded",
                   "TooManyRequestsException", "RequestThrottled", "SlowDown",
                   "RESOURCE_EXHAUSTED", "TooManyRequests", "429"}
_CRED_CODES = {"AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId",
               "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException",
               "ExpiredToken", "UnrecognizedClientException", "PERMISSION_DENIED",
               "UNAUTHENTICATED", "401", "403"}


class Throttled(Exception):
    """Raised by our own HTTP code on 429/503 so the retry loop treats it like an SDK's."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def error_code(exc: BaseException) -> str:
    """The API's error code for botocore, google-api-core, azure and our own errors."""
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):  # botocore ClientError
        return str(resp.get("Error", {}).get("Code", ""))
    if isinstance(exc, Throttled):
        return "429"
    code = getattr(exc, "code", None)  # google.api_core / urllib: an HTTP status
    if isinstance(code, int):
        return str(int(code))
    if code is not None:
        return str(getattr(code, "name", code))
    status = getattr(exc, "status_code", None)  # azure HttpResponseError, urllib HTTPError
    return str(status) if status is not None else ""


def is_throttle(exc: BaseException) -> bool:
    return isinstance(exc, Throttled) or error_code(exc) in _THROTTLE_CODES


def with_retries(call: Callable[[], T], *, what: str, attempts: int | None = None,
                 base: float | None = None, sleep: Callable[[float], Any] = time.sleep) -> T:
    """`call()`, retried with jittered exponential backoff while the API throttles.

    `SKYBROKER_REFRESH_BACKOFF` (seconds, default 1) scales the waits; tests set it tiny.
    """
    attempts = attempts or int(os.environ.get("SKYBROKER_REFRESH_ATTEMPTS", "6"))
    base = base if base is not None else float(os.environ.get("SKYBROKER_REFRESH_BACKOFF", "1"))
    for i in range(attempts):
        try:
            return call()
        except Exception as e:  # noqa: BLE001 - classified just below
            if not is_throttle(e) or i == attempts - 1:
                raise
            wait = getattr(e, "retry_after", None) or base * (2 ** i) * (0.5 + random.random())
            sleep(min(wait, 60.0))
    raise AssertionError("unreachable")


def explain(cloud: str, exc: BaseException, endpoint: str | None = None) -> CatalogError:
    """One clear line (plus a hint) for a failed refresh; the old catalog is untouched."""
    keep = "the old catalog is kept"
    if isinstance(exc, CatalogError):
        return exc
    if isinstance(exc, (CredentialsError, NotSupportedError)):
        return CatalogError(f"{cloud} refresh failed: {exc}; {keep}.", hint=exc.hint)
    code = error_code(exc)
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    if is_throttle(exc):
        return CatalogError(f"{cloud} refresh failed: the API kept throttling ({code}); {keep}.",
                            hint="retry later, or refresh fewer regions (--region)")
    if code in _CRED_CODES or "credential" in first.lower() or "NoCredentials" in type(exc).__name__:
        return CatalogError(f"{cloud} refresh failed: credentials rejected ({code or first}); {keep}.",
                            hint=_CRED_HINT.get(cloud))
    if _is_connection(exc):
        where = f" at {endpoint}" if endpoint else ""
        return CatalogError(f"{cloud} refresh failed: cannot reach the API{where} ({first}); {keep}.",
                            hint="check the network and any endpoint override "
                                 f"({_ENDPOINT_HINT.get(cloud, 'config')})")
    return CatalogError(f"{cloud} refresh failed: {type(exc).__name__}: {first}; {keep}.",
                        hint="rerun with SKYBROKER_DEBUG=1 for the traceback")


_CRED_HINT = {
    "aws": "configure credentials (aws configure) with ec2:Describe* and pricing:GetProducts",
    "gcp": "gcloud auth application-default login; the account needs compute.machineTypes.list "
           "and the Cloud Billing API enabled",
    "azure": "az login (resource SKUs); the retail price API itself needs no credentials",
}
_ENDPOINT_HINT = {
    "aws": "aws.endpoint_url / AWS_ENDPOINT_URL",
    "gcp": "gcp.endpoint_url / SKYBROKER_GCP_ENDPOINT",
    "azure": "azure.prices_url / SKYBROKER_AZURE_PRICES_URL",
}


def _is_connection(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"EndpointConnectionError", "ConnectionError", "URLError",
                         "ConnectTimeoutError", "ServiceUnavailable", "RetryError",
                         "ServiceRequestError", "TimeoutError", "ConnectionRefusedError"})


class Progress:
    """A rich progress bar on a terminal, silence elsewhere (rich imported only if shown)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None

    def stage(self, description: str, total: int | None) -> None:
        """Start a new stage (e.g. 'aws us-east-1: prices') of `total` steps."""
        if self._bar is not None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(description, total=total)

    def print(self, message: str) -> None:
        """A line above the live bar (or plainly on stderr without one)."""
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=sys.stderr)

    def advance(self, n: int = 1, description: str | None = None) -> None:
        if self._bar is not None and self._task is not None:
            kw = {"description": description} if description else {}
            self._bar.update(self._task, advance=n, **kw)

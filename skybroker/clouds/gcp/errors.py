"""GCE errors -> our typed errors, and the throttling-aware call wrapper.

GCE reports stock-outs inside the *operation* (`error.errors[].code`, e.g.
ZONE_RESOURCE_POOL_EXHAUSTED) and quota/auth problems as HTTP errors with `reason`s; both
arrive as google.api_core exceptions whose `.errors` hold those codes. We classify on the
codes, falling back to the HTTP status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skybroker import errors
from skybroker.clouds.retry import call_with_retry

CAPACITY = ("ZONE_RESOURCE_POOL_EXHAUSTED", "STOCKOUT", "RESOURCE_POOL_EXHAUSTED",
            "does not have enough resources available", "NOT_ENOUGH_RESOURCES")
QUOTA = ("QUOTA_EXCEEDED", "quotaExceeded", "QUOTA_LIMIT", "Quota '")
CREDENTIALS = ("accessNotConfigured", "SERVICE_DISABLED", "forbidden", "insufficientPermissions",
               "authError", "unauthorized", "PERMISSION_DENIED", "UNAUTHENTICATED")
THROTTLE = ("rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED", "backendError")
# a machine/accelerator type that a zone does not offer: try the next zone
TYPE_NOT_IN_ZONE = ("machineTypes/", "acceleratorTypes/", "machineType", "acceleratorType")

RETRY_ATTEMPTS = 5
RETRY_BASE_S = 0.5
RETRY_MAX_S = 8.0


def _codes(exc: BaseException) -> list[str]:
    out = []
    for e in getattr(exc, "errors", None) or []:
        if isinstance(e, dict):
            out += [str(e.get(k)) for k in ("reason", "code", "message") if e.get(k)]
        else:  # proto Errors from an operation
            out += [str(getattr(e, k)) for k in ("code", "message", "reason") if getattr(e, k, None)]
    return out


def map_error(exc: BaseException, *, where: str = "") -> errors.ProvisionError | None:
    """The typed error for a google exception, or None when it is not a cloud error."""
    try:
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as aexc
    except ImportError:
        return None
    prefix = f"GCP {where}: " if where else "GCP: "
    if isinstance(exc, (aexc.DefaultCredentialsError, aexc.RefreshError)):
        return errors.CredentialsError(f"{prefix}{exc}",
                                       hint="gcloud auth application-default login")
    if isinstance(exc, aexc.TransportError):
        return errors.ThrottledError(f"{prefix}{exc}")
    if not isinstance(exc, gexc.GoogleAPICallError):
        return None
    codes = _codes(exc)
    text = " ".join([*codes, str(getattr(exc, "message", "") or exc)])
    msg = f"{prefix}{codes[0] if codes else exc.code}: {getattr(exc, 'message', exc)}"
    status = getattr(exc, "code", None) or 0
    if any(c in text for c in CAPACITY):
        return errors.CapacityError(msg, scope="zone")
    if any(c in text for c in QUOTA):
        return errors.QuotaError(msg)
    if any(c in text for c in THROTTLE) or status == 429:
        return errors.ThrottledError(msg)
    if status in (401, 403) or any(c in text for c in CREDENTIALS):
        return errors.CredentialsError(msg, hint="check `sky check gcp` and the IAM roles")
    if status in (400, 404) and any(c in text for c in TYPE_NOT_IN_ZONE):
        return errors.CapacityError(msg, scope="zone")
    if status == 400:
        return errors.InvalidRequestError(msg)
    if status in (500, 502, 503, 504):
        return errors.ThrottledError(msg)
    return errors.ProvisionError(msg)


def call(fn: Callable[..., Any], /, *args: Any, _where: str = "", _ok: tuple[int, ...] = (),
         **kwargs: Any) -> Any:
    """Call a compute API; HTTP statuses in `_ok` (e.g. 404 on delete, 409 on insert) return
    None. Throttling is retried with capped jittered backoff, then raised as ThrottledError."""
    return call_with_retry(fn, args, kwargs, map_error=map_error,
                           is_ok=lambda e: bool(_ok and getattr(e, "code", None) in _ok),
                           where=_where, attempts=RETRY_ATTEMPTS,
                           base_s=RETRY_BASE_S, max_s=RETRY_MAX_S)

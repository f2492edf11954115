"""ARM errors -> our typed errors, and the throttling-aware call wrapper.

ARM reports allocation failures in the long-running operation (`status: Failed`,
`error.code: AllocationFailed`), which azure-core raises from `.result()` as an
HttpResponseError carrying that code; quota, auth and validation errors come back at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skybroker import errors
from skybroker.clouds.retry import call_with_retry

CAPACITY_ZONE = {"AllocationFailed", "ZonalAllocationFailed", "OverconstrainedAllocationRequest",
                 "OverconstrainedZonalAllocationRequest", "SpotVMEvictionDuringCreation",
                 "AllocationFailedDueToSpotCapacity"}
# a size not offered in this region/zone for this subscription: try elsewhere
CAPACITY_REGION = {"SkuNotAvailable", "InvalidTemplateDeployment_SkuNotAvailable"}
QUOTA = {"QuotaExceeded", "OperationNotAllowed", "ResourceQuotaExceeded",
         "PublicIPCountLimitReached", "SubscriptionNotRegistered", "MissingSubscriptionRegistration"}
CREDENTIALS = {"AuthenticationFailed", "AuthorizationFailed", "InvalidAuthenticationToken",
               "InvalidAuthenticationTokenTenant", "ExpiredAuthenticationToken", "LinkedAuthorizationFailed",
               "SubscriptionNotFound", "InvalidSubscriptionId"}
THROTTLE = {"TooManyRequests", "RetryableError", "ServerBusy", "InternalServerError",
            "SubscriptionRequestsThrottled"}
INVALID_PREFIXES = ("Invalid", "BadRequest", "PropertyChangeNotAllowed", "MissingRequiredParameter")

RETRY_ATTEMPTS = 5
RETRY_BASE_S = 0.5
RETRY_MAX_S = 8.0


def error_code(exc: BaseException) -> str:
    err = getattr(exc, "error", None)
    code = getattr(err, "code", None) or ""
    if not code:  # some pollers only keep the message: "(AllocationFailed) ..."
        text = str(getattr(exc, "message", "") or exc)
        if text.startswith("(") and ")" in text:
            code = text[1:text.index(")")]
    return str(code)


def map_error(exc: BaseException, *, where: str = "") -> errors.ProvisionError | None:
    """The typed error for an azure-core exception, or None when it is not a cloud error."""
    try:
        from azure.core import exceptions as aexc
    except ImportError:
        return None
    prefix = f"Azure {where}: " if where else "Azure: "
    if isinstance(exc, aexc.ClientAuthenticationError):
        return errors.CredentialsError(f"{prefix}{_first(exc)}", hint="run `az login` or check `sky check azure`")
    if type(exc).__name__ == "CredentialUnavailableError":
        return errors.CredentialsError(f"{prefix}{_first(exc)}", hint="run `az login`")
    if isinstance(exc, (aexc.ServiceRequestError, aexc.ServiceResponseError)):
        return errors.ThrottledError(f"{prefix}{_first(exc)}")
    if not isinstance(exc, aexc.HttpResponseError):
        return None
    code = error_code(exc)
    status = getattr(exc, "status_code", None) or 0
    msg = f"{prefix}{code or status}: {_first(exc)}"
    text = str(exc).lower()
    if code in CAPACITY_ZONE:
        return errors.CapacityError(msg, scope="zone")
    if code in CAPACITY_REGION:
        return errors.CapacityError(msg, scope="region")
    if code in QUOTA or "quota" in text:
        return errors.QuotaError(msg)
    if code in CREDENTIALS or status in (401, 403):
        return errors.CredentialsError(msg, hint="run `az login` or check the role assignments")
    if code in THROTTLE or status in (429, 500, 502, 503, 504):
        return errors.ThrottledError(msg)
    if code.startswith(INVALID_PREFIXES) or status == 400:
        return errors.InvalidRequestError(msg)
    return errors.ProvisionError(msg)


def _first(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def call(fn: Callable[..., Any], /, *args: Any, _where: str = "", _ok: tuple[int, ...] = (),
         **kwargs: Any) -> Any:
    """Call an ARM API; HTTP statuses in `_ok` return None. Throttling is retried with capped
    jittered backoff, then raised as ThrottledError."""
    return call_with_retry(fn, args, kwargs, map_error=map_error,
                           is_ok=lambda e: bool(_ok and getattr(e, "status_code", None) in _ok),
                           where=_where, attempts=RETRY_ATTEMPTS,
                           base_s=RETRY_BASE_S, max_s=RETRY_MAX_S)

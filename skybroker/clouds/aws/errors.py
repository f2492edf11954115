"""EC2 error codes -> our typed errors, and the throttling-aware call wrapper.

Why a table, not string search at the call sites: the failover loop blocks by error *type*,
so every EC2 call goes through `call()`, which maps codes once and retries throttling here
(the provisioner contract says throttling never reaches the loop unless it persists).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skybroker import errors
from skybroker.clouds.retry import call_with_retry

# zone-scoped stock-outs: the type may well exist in the next zone
CAPACITY_ZONE = {
    "InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientCapacity",
    "InsufficientReservedInstanceCapacity", "SpotMaxPriceTooLow", "Unsupported",
    "InsufficientFreeAddressesInSubnet",
}
QUOTA = {
    "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded", "InstanceLimitExceeded",
    "MaxSpotFleetRequestCountExceeded", "VolumeLimitExceeded", "AddressLimitExceeded",
    "SecurityGroupLimitExceeded", "OptInRequired", "PendingVerification",
}
CREDENTIALS = {
    "AuthFailure", "UnrecognizedClientException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "ExpiredToken", "ExpiredTokenException", "UnauthorizedOperation", "AccessDenied",
    "AccessDeniedException", "MissingAuthenticationToken", "Blocked",
}
THROTTLING = {
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
    "RequestThrottled", "RequestThrottledException", "ServiceUnavailable", "Unavailable",
    "InternalError", "InternalFailure", "EC2ThrottledException",
}
INVALID_PREFIXES = ("InvalidParameter", "InvalidInstanceType", "InvalidBlockDeviceMapping",
                    "MissingParameter", "InvalidAMIID", "InvalidKeyPair.Format", "ValidationError")

# Retry tuning; tests shrink RETRY_BASE_S so throttling tests take milliseconds.
RETRY_ATTEMPTS = 5
RETRY_BASE_S = 0.5
RETRY_MAX_S = 8.0


def error_code(exc: BaseException) -> str:
    resp = getattr(exc, "response", None) or {}
    return str((resp.get("Error") or {}).get("Code") or "")


def map_error(exc: BaseException, *, where: str = "") -> errors.ProvisionError | None:
    """The typed error for a botocore exception, or None when it is not a cloud error."""
    from botocore import exceptions as bexc

    prefix = f"AWS {where}: " if where else "AWS: "
    if isinstance(exc, (bexc.NoCredentialsError, bexc.PartialCredentialsError)):
        return errors.CredentialsError(f"{prefix}{exc}", hint="run `aws configure` or set AWS_PROFILE")
    if isinstance(exc, (bexc.EndpointConnectionError, bexc.ConnectTimeoutError,
                        bexc.ReadTimeoutError)):
        return errors.ThrottledError(f"{prefix}{exc}")
    if not isinstance(exc, bexc.ClientError):
        return None
    code = error_code(exc)
    msg = f"{prefix}{code}: {(exc.response.get('Error') or {}).get('Message', '')}".rstrip(": ")
    mapped = _classify(code, msg)
    mapped.code = code  # type: ignore[attr-defined]
    return mapped


def _classify(code: str, msg: str) -> errors.ProvisionError:
    if code in CAPACITY_ZONE:
        return errors.CapacityError(msg, scope="zone")
    if code in QUOTA:
        return errors.QuotaError(msg)
    if code in CREDENTIALS:
        return errors.CredentialsError(msg, hint="check `sky check` and the IAM policy")
    if code in THROTTLING:
        return errors.ThrottledError(msg)
    if code.startswith(INVALID_PREFIXES):
        return errors.InvalidRequestError(msg)
    return errors.ProvisionError(msg)


def call(fn: Callable[..., Any], /, *args: Any, _where: str = "", _ok: frozenset[str] | set[str] = frozenset(),
         **kwargs: Any) -> Any:
    """Call an EC2 API, mapping errors and retrying throttling with capped jittered backoff.

    Error codes in `_ok` (e.g. "already exists") return None instead of raising. Mapped
    errors carry the EC2 code as `.code`.
    """
    return call_with_retry(fn, args, kwargs, map_error=map_error,
                           is_ok=lambda e: bool(_ok and error_code(e) in _ok),
                           where=_where or getattr(fn, "__name__", ""), attempts=RETRY_ATTEMPTS,
                           base_s=RETRY_BASE_S, max_s=RETRY_MAX_S)

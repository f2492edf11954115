"""Typed errors shared across layers.

Every error a user can see derives from `SkyError`; the CLI prints its message as one line
(plus an optional hint) instead of a traceback. Cloud errors are typed so the failover loop
can decide what to block without matching strings.
"""

from __future__ import annotations


class SkyError(Exception):
    """Base class for errors shown to users as a clear message, not a traceback."""

    hint: str | None = None

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class TaskValidationError(SkyError, ValueError):
    """A task YAML or Resources spec is invalid. The message names file, line and field."""


class NotSupportedError(SkyError):
    """The request is valid but this broker (or this cloud) cannot do it."""


class ResourcesUnavailableError(SkyError):
    """No placement in the plan could be launched (or none is feasible).

    `attempts`: the failover loop's `Attempt`s (empty when nothing was tried), so a caller
    can tell "out of capacity, try again later" from "can never launch" without parsing text.
    """

    attempts: tuple = ()


class CatalogError(SkyError):
    """A catalog file is missing, malformed, or a refresh failed."""


class TraceError(SkyError, ValueError):
    """A spot-availability trace is malformed (wrong convention, gaps, non-numeric data)."""


class ClusterNotFoundError(SkyError):
    """No cluster of that name is recorded."""


class CommandError(SkyError):
    """A command on a node exited non-zero."""

    def __init__(self, message: str, returncode: int = 1, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.returncode = returncode


# ---- cloud provisioning errors (raised by provisioners, consumed by failover) ----


class ProvisionError(SkyError):
    """Base of cloud errors raised by a provisioner for one placement."""

    retryable: bool = False


class CapacityError(ProvisionError):
    """Out of capacity. `scope` says what to block: 'zone', 'region' or 'instance_type'."""

    def __init__(self, message: str, scope: str = "zone", hint: str | None = None) -> None:
        super().__init__(message, hint)
        if scope not in ("zone", "region", "instance_type", "cloud"):
            raise ValueError(f"bad CapacityError scope {scope!r}")
        self.scope = scope


class QuotaError(ProvisionError):
    """The account's quota does not allow this placement (blocks the region)."""


class CredentialsError(ProvisionError):
    """Credentials are missing or rejected (blocks the whole cloud)."""


class InvalidRequestError(ProvisionError):
    """The cloud rejected the request as malformed (blocks the instance type)."""


class ThrottledError(ProvisionError):
    """Rate limited; provisioners retry these with backoff before giving up."""

    retryable = True

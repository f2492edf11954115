"""skybroker: an intercloud job broker and deadline-aware spot-instance scheduler.

The top-level package stays import-light: `sky --help` must not pay for numpy, rich or
any cloud SDK. Public API objects are re-exported lazily from `skybroker.api`.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "Task": ("skybroker.task", "Task"),
    "Resources": ("skybroker.task", "Resources"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'skybroker' has no attribute {name!r}")

"""Cloud name -> provisioner, imported lazily so unused SDKs are never loaded."""

from __future__ import annotations

import importlib

from skybroker.utils.registry import did_you_mean

# cloud -> (module, factory attribute). The factory takes no arguments and returns a
# Provisioner (see skybroker.clouds.base); it reads config/credentials itself.
PROVISIONERS: dict[str, tuple[str, str]] = {
    "local": ("skybroker.clouds.local.provisioner", "LocalProvisioner"),
    "ssh": ("skybroker.clouds.ssh.provisioner", "SSHProvisioner"),
    "aws": ("skybroker.clouds.aws.provisioner", "AWSProvisioner"),
    "gcp": ("skybroker.clouds.gcp.provisioner", "GCPProvisioner"),
    "azure": ("skybroker.clouds.azure.provisioner", "AzureProvisioner"),
}


def get_provisioner(cloud: str):
    """A provisioner instance for `cloud` (imports its SDK on first use)."""
    from skybroker.errors import SkyError

    key = cloud.lower()
    if key not in PROVISIONERS:
        raise SkyError(f"Unknown cloud {cloud!r}.{did_you_mean(cloud, PROVISIONERS)}")
    module, attr = PROVISIONERS[key]
    return getattr(importlib.import_module(module), attr)()

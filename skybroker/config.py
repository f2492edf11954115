"""Where the broker keeps its state, and the user's config file.

The home defaults to ~/.sky and is overridden by SKYBROKER_HOME (tests always set it), so no
test ever touches a real home. The config file is `<home>/config.yaml`, SkyPilot-style.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

HOME_ENV = "SKYBROKER_HOME"
ALL_CLOUDS = ("aws", "gcp", "azure", "local", "ssh")
PLANNABLE_CLOUDS = ("aws", "gcp", "azure", "local")


def home() -> Path:
    """The broker's home directory (created on first use)."""
    path = Path(os.environ.get(HOME_ENV) or Path.home() / ".sky").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_config() -> dict[str, Any]:
    """The parsed `<home>/config.yaml`, or {} when there is none."""
    path = home() / "config.yaml"
    if not path.exists():
        return {}
    import yaml

    from skybroker.errors import SkyError

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SkyError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise SkyError(f"{path}: expected a mapping at the top level")
    return data


def enabled_clouds(dryrun: bool = False) -> list[str]:
    """Clouds the optimizer may use: `allowed_clouds` in config, else all plannable ones.

    Credentials are not needed to plan, so a dry run considers every allowed cloud; a real
    launch additionally filters by `sky check` (done by the caller).
    """
    allowed = load_config().get("allowed_clouds")
    if allowed:
        return [str(c).lower() for c in allowed]
    return list(PLANNABLE_CLOUDS)

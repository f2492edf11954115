"""Which clouds have usable credentials, found the way each SDK finds them itself.

Why the SDKs' own discovery: users already configured `aws configure` / profiles / SSO,
`gcloud auth application-default login`, `az login` or service-principal env vars; we must
see exactly what the SDK will use at launch, and say in one line what to fix otherwise.
Discovery is offline by default (no API call); `verify=True` makes one cheap authenticated
call per cloud. The result is cached in `<home>/check.json` for `sky launch` to filter clouds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from skybroker.config import enabled_clouds, home

CACHE_FILE = "check.json"
# A cached "enabled" is trusted for a day (a launch that then meets bad credentials blocks the
# cloud anyway); a cached "disabled" only for minutes, so a fix is picked up without `sky check`.
TRUST_OK_S = 86400.0
TRUST_FAILED_S = 300.0
SDK_CLOUDS = ("aws", "gcp", "azure")
# Clouds that need no credentials check (the embedded local cloud, bring-your-own SSH hosts).
ALWAYS = ("local", "ssh")


@dataclass
class CloudStatus:
    cloud: str
    ok: bool
    detail: str  # where the credentials come from, or what to fix

    def line(self) -> str:
        mark = "enabled " if self.ok else "disabled"
        return f"{self.cloud.upper():<6} {mark}  {self.detail}"


def _require(*modules: str) -> None:
    """Raise ImportError when a module is not installed, without importing it.

    Importing google.cloud.compute_v1 alone costs seconds; the check only needs to know the
    SDK is there.
    """
    import importlib.util

    for m in modules:
        try:
            spec = importlib.util.find_spec(m)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            raise ImportError(f"No module named {m!r}", name=m)


def _vm_vendor() -> str:
    """The machine's DMI vendor/product ('Amazon EC2', 'Google Compute Engine', ...) or ''."""
    parts = []
    for f in ("sys_vendor", "product_name"):
        with contextlib.suppress(OSError):
            parts.append(Path(f"/sys/class/dmi/id/{f}").read_text().strip())
    return " ".join(parts)


def _sdk_missing(cloud: str, exc: ImportError) -> CloudStatus:
    return CloudStatus(cloud, False, f"SDK not installed ({exc.name or exc}): "
                                     f"pip install 'skybroker[{cloud}]'")


def check_aws(verify: bool = False) -> CloudStatus:
    try:
        _require("boto3")
    except ImportError as e:
        return _sdk_missing("aws", e)
    from skybroker.clouds import clients
    from skybroker.errors import SkyError

    # Off EC2, botocore's last resort (the instance metadata service) can only time out.
    off_ec2 = "amazon" not in _vm_vendor().lower() and "AWS_EC2_METADATA_DISABLED" not in os.environ
    if off_ec2:
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    try:
        creds = clients.aws_session().get_credentials()
    except SkyError as e:
        return CloudStatus("aws", False, str(e))
    except Exception as e:  # botocore config errors (bad profile, broken SSO cache)
        return CloudStatus("aws", False, f"{type(e).__name__}: {e}")
    finally:
        if off_ec2:
            os.environ.pop("AWS_EC2_METADATA_DISABLED", None)
    if creds is None:
        return CloudStatus("aws", False, "no credentials found: run `aws configure` (or "
                                         "`aws sso login`), or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    detail = f"credentials from {getattr(creds, 'method', 'boto3')}"
    if verify:
        try:
            ident = clients.aws_client("sts", "us-east-1").get_caller_identity()
            detail += f", account {ident.get('Account')}"
        except Exception as e:
            return CloudStatus("aws", False, f"credentials rejected ({_short(e)}): fix them or "
                                             "run `aws configure`")
    return CloudStatus("aws", True, detail)


def check_gcp(verify: bool = False) -> CloudStatus:
    try:
        _require("google.auth", "google.cloud.compute_v1")
    except ImportError as e:
        return _sdk_missing("gcp", e)
    from skybroker.clouds import clients

    no_adc = CloudStatus("gcp", False, "no Application Default Credentials: run "
                                      "`gcloud auth application-default login` or set "
                                      "GOOGLE_APPLICATION_CREDENTIALS")
    # Judge offline first: with no ADC file and off GCE, google.auth.default() would only
    # spend ~10 s probing the metadata server to say the same.
    gcloud_dir = Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")
    if not (os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
            or (gcloud_dir / "application_default_credentials.json").exists()
            or "google" in _vm_vendor().lower()):
        return no_adc
    import google.auth
    from google.auth import exceptions as gexc

    try:
        creds, adc_project = google.auth.default()
    except gexc.DefaultCredentialsError:
        return no_adc
    project = (clients.cloud_config("gcp").get("project_id") or os.environ.get("GOOGLE_CLOUD_PROJECT")
               or adc_project)
    if not project:
        return CloudStatus("gcp", False, "credentials found but no project: set gcp.project_id in "
                                         "config.yaml or GOOGLE_CLOUD_PROJECT")
    if verify:
        try:
            import google.auth.transport.requests as gtr

            creds.refresh(gtr.Request())
        except Exception as e:
            return CloudStatus("gcp", False, f"credentials rejected ({_short(e)}): run "
                                             "`gcloud auth application-default login`")
    return CloudStatus("gcp", True, f"Application Default Credentials, project {project}")


def _azure_source() -> str | None:
    """Where DefaultAzureCredential would find credentials, judged offline."""
    env = os.environ
    if env.get("SKYBROKER_AZURE_TOKEN"):
        return "SKYBROKER_AZURE_TOKEN"
    if env.get("AZURE_CLIENT_ID") and env.get("AZURE_TENANT_ID") and (
            env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_CLIENT_CERTIFICATE_PATH")
            or env.get("AZURE_FEDERATED_TOKEN_FILE")):
        return "service principal (AZURE_CLIENT_ID/AZURE_TENANT_ID env)"
    if env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
        return "managed identity"
    azure_dir = Path(env.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")
    if shutil.which("az") and (azure_dir / "azureProfile.json").exists():
        return "Azure CLI login"
    return None


def _azure_cli_subscription() -> str | None:
    path = Path(os.environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure") / "azureProfile.json"
    try:
        subs = json.loads(path.read_text(encoding="utf-8-sig")).get("subscriptions", [])
    except (OSError, ValueError):
        return None
    return next((s.get("id") for s in subs if s.get("isDefault")), None)


def check_azure(verify: bool = False) -> CloudStatus:
    try:
        _require("azure.identity", "azure.mgmt.compute")
    except ImportError as e:
        return _sdk_missing("azure", e)
    from skybroker.clouds import clients

    source = _azure_source()
    if source is None:
        return CloudStatus("azure", False, "no credentials found: run `az login`, or set "
                                           "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET")
    sub = (clients.cloud_config("azure").get("subscription_id")
           or os.environ.get("AZURE_SUBSCRIPTION_ID") or _azure_cli_subscription())
    if not sub:
        return CloudStatus("azure", False, f"{source} found but no subscription: set "
                                           "AZURE_SUBSCRIPTION_ID or azure.subscription_id")
    if verify:
        try:
            clients.azure_credential().get_token("https://management.azure.com/.default")
        except Exception as e:
            return CloudStatus("azure", False, f"credentials rejected ({_short(e)}): run `az login`")
    return CloudStatus("azure", True, f"{source}, subscription {sub}")


CHECKS = {"aws": check_aws, "gcp": check_gcp, "azure": check_azure}


def _short(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text if len(text) < 120 else text[:117] + "..."


def check(clouds: list[str] | None = None, verify: bool = False) -> list[CloudStatus]:
    """Check `clouds` (default: every SDK cloud) and cache the result for launches."""
    names = [c.lower() for c in clouds] if clouds else list(SDK_CLOUDS)
    out = []
    for name in names:
        if name in CHECKS:
            out.append(CHECKS[name](verify))
        elif name in ALWAYS:
            out.append(CloudStatus(name, True, "no credentials needed"))
        else:
            from skybroker.errors import SkyError
            from skybroker.utils.registry import did_you_mean

            raise SkyError(f"Unknown cloud {name!r}.{did_you_mean(name, [*SDK_CLOUDS, *ALWAYS])}")
    _save(out)
    return out


def _save(results: list[CloudStatus]) -> None:
    path = home() / CACHE_FILE
    cached = load_cache() or {}
    now = time.time()
    cached.update({r.cloud: {**asdict(r), "at": now} for r in results})
    tmp = path.with_suffix(f".tmp{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps({"checked_at": time.time(), "clouds": cached}, indent=1))
    os.replace(tmp, path)


def load_cache() -> dict[str, dict] | None:
    try:
        return json.loads((home() / CACHE_FILE).read_text())["clouds"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def enabled_clouds_for_launch() -> list[str]:
    """Clouds a real launch may use: allowed by config, and (for SDK clouds) passing `sky check`.

    Uses the cached check when there is one (run `sky check` to refresh it), else checks now.
    """
    allowed = enabled_clouds()
    cached = load_cache() or {}
    now = time.time()

    def fresh(c: str) -> bool:
        row = cached.get(c) or {}
        ttl = TRUST_OK_S if row.get("ok") else TRUST_FAILED_S
        return now - float(row.get("at", 0)) < ttl

    todo = [c for c in allowed if c in SDK_CLOUDS and not fresh(c)]
    if todo:
        cached.update({r.cloud: asdict(r) for r in check(todo)})
    return [c for c in allowed if c not in SDK_CLOUDS or cached.get(c, {}).get("ok")]

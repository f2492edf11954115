"""The one place that creates cloud SDK clients, and this broker's identity.

Why one place: every client must honour the same endpoint override (tests point boto3 at
moto, google-cloud-compute at a GCE stub, azure-mgmt at an ARM stub; users point them at
S3-compatible or sovereign-cloud endpoints), and SDKs must be imported lazily so that
`sky --help` never pays for them. Nothing here imports an SDK at module level.

Overrides, first match wins:
- AWS:   config `aws.endpoint_url`, env `AWS_ENDPOINT_URL_EC2` / `AWS_ENDPOINT_URL`.
- GCP:   config `gcp.endpoint_url`, env `SKYBROKER_GCP_ENDPOINT`; project from config
         `gcp.project_id`, `GOOGLE_CLOUD_PROJECT`, or the ADC project.
- Azure: config `azure.endpoint_url`, env `SKYBROKER_AZURE_ENDPOINT`; subscription from
         config `azure.subscription_id` or `AZURE_SUBSCRIPTION_ID`; `azure.ca_bundle` /
         `SKYBROKER_AZURE_CA_BUNDLE` for a private CA.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from skybroker.config import home, load_config
from skybroker.errors import CredentialsError, NotSupportedError

BROKER_ID_FILE = "broker_id"


def broker_id() -> str:
    """A stable id for this broker installation, tagged on every resource it creates."""
    path = home() / BROKER_ID_FILE
    try:
        value = path.read_text().strip()
        if value:
            return value
    except OSError:
        pass
    value = uuid.uuid4().hex[:12]
    tmp = path.with_suffix(f".tmp{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(value + "\n")
    try:
        os.link(tmp, path)  # first writer wins; concurrent launches agree on one id
    except FileExistsError:
        value = path.read_text().strip() or value
    except OSError:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return value


def cloud_config(cloud: str) -> dict[str, Any]:
    """The `<cloud>:` section of the user's config (empty when absent)."""
    section = load_config().get(cloud) or {}
    return section if isinstance(section, dict) else {}


def missing_sdk(cloud: str, exc: ImportError) -> NotSupportedError:
    return NotSupportedError(
        f"The {cloud.upper()} SDK is not installed ({exc.name or exc}).",
        hint=f"pip install 'skybroker[{cloud}]'",
    )


# ---- AWS ----


def aws_endpoint() -> str | None:
    return (cloud_config("aws").get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_EC2")
            or os.environ.get("AWS_ENDPOINT_URL") or None)


_BOTO_LOADER: Any = None


def aws_session(region: str | None = None) -> Any:
    """A boto3 session (profile from config `aws.profile`, else boto3's own discovery)."""
    try:
        import boto3
    except ImportError as e:
        raise missing_sdk("aws", e) from None
    import botocore.session

    global _BOTO_LOADER
    profile = cloud_config("aws").get("profile")
    core = botocore.session.get_session()
    if _BOTO_LOADER is None:  # parsing EC2's service model costs ~0.5 s: do it once
        _BOTO_LOADER = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _BOTO_LOADER)
    try:
        return boto3.session.Session(profile_name=profile, region_name=region, botocore_session=core)
    except Exception as e:  # botocore.exceptions.ProfileNotFound and friends
        raise CredentialsError(f"AWS profile {profile!r}: {e}") from None


_AWS_CLIENTS: dict[tuple, Any] = {}


def aws_client(service: str, region: str, *, max_attempts: int = 1) -> Any:
    """A boto3 client with the endpoint override applied and botocore's retries bounded.

    botocore does not retry: our `call()` wrapper retries throttling and connection errors with its own backoff (two layers of retries multiply waits). Clients
    are cached (creating one costs tens of ms) per service, region, endpoint and identity.
    """
    endpoint = aws_endpoint()
    key = (service, region, endpoint, max_attempts, cloud_config("aws").get("profile"),
           os.environ.get("AWS_PROFILE"), os.environ.get("AWS_ACCESS_KEY_ID"),
           os.environ.get("AWS_SHARED_CREDENTIALS_FILE"), os.environ.get("AWS_CONFIG_FILE"))
    if key not in _AWS_CLIENTS:
        from botocore.config import Config

        cfg = Config(retries={"total_max_attempts": max_attempts, "mode": "standard"},
                     connect_timeout=10, read_timeout=60)
        _AWS_CLIENTS[key] = aws_session(region).client(service, region_name=region,
                                                       endpoint_url=endpoint, config=cfg)
    return _AWS_CLIENTS[key]


# ---- GCP ----


def gcp_endpoint() -> str | None:
    return cloud_config("gcp").get("endpoint_url") or os.environ.get("SKYBROKER_GCP_ENDPOINT") or None


def gcp_credentials() -> tuple[Any, str | None]:
    """(credentials, project) from Application Default Credentials.

    With an endpoint override and no ADC (tests, private endpoints), anonymous credentials.
    """
    try:
        import google.auth
        from google.auth import exceptions as gexc
    except ImportError as e:
        raise missing_sdk("gcp", e) from None
    project = cloud_config("gcp").get("project_id") or os.environ.get("GOOGLE_CLOUD_PROJECT")
    try:
        creds, adc_project = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except gexc.DefaultCredentialsError as e:
        if gcp_endpoint():
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials(), project
        raise CredentialsError(f"GCP: no Application Default Credentials ({e})",
                               hint="gcloud auth application-default login") from None
    return creds, project or adc_project


def gcp_client(kind: str) -> Any:
    """A google-cloud-compute client, e.g. kind='Instances', 'Firewalls', 'ZoneOperations'.

    With an endpoint override, the client's extended-operation pollers (which the library
    builds without our options and would send to the real host) are replaced by clients with
    the same endpoint.
    """
    try:
        from google.api_core.client_options import ClientOptions
        from google.cloud import compute_v1
    except ImportError as e:
        raise missing_sdk("gcp", e) from None
    creds, _ = gcp_credentials()
    endpoint = gcp_endpoint()
    opts = ClientOptions(api_endpoint=endpoint) if endpoint else None
    client = getattr(compute_v1, f"{kind}Client")(credentials=creds, client_options=opts,
                                                 transport="rest")
    if endpoint:
        ops = getattr(client._transport, "_extended_operations_services", None)
        if isinstance(ops, dict):
            for name, cls in (("zone_operations", "ZoneOperationsClient"),
                              ("region_operations", "RegionOperationsClient"),
                              ("global_operations", "GlobalOperationsClient")):
                ops[name] = getattr(compute_v1, cls)(credentials=creds, client_options=opts,
                                                     transport="rest")
    return client


def gcp_project() -> str:
    _, project = gcp_credentials()
    if not project:
        raise CredentialsError("GCP: no project configured",
                               hint="set gcp.project_id in config.yaml or GOOGLE_CLOUD_PROJECT")
    return project


def gcp_billing_endpoint() -> str | None:
    """Cloud Billing's own override (config `gcp.billing_endpoint_url`,
    `SKYBROKER_GCP_BILLING_ENDPOINT`), else the Compute one: tests serve both from one stub."""
    return (cloud_config("gcp").get("billing_endpoint_url")
            or os.environ.get("SKYBROKER_GCP_BILLING_ENDPOINT") or gcp_endpoint())


def gcp_billing_client() -> Any:
    """A google-cloud-billing CloudCatalogClient (the public SKU price list) over REST."""
    try:
        from google.api_core.client_options import ClientOptions
        from google.cloud import billing_v1
    except ImportError as e:
        raise missing_sdk("gcp", e) from None
    creds, _ = gcp_credentials()
    endpoint = gcp_billing_endpoint()
    opts = ClientOptions(api_endpoint=endpoint) if endpoint else None
    return billing_v1.CloudCatalogClient(credentials=creds, client_options=opts, transport="rest")


# ---- Azure ----


def azure_endpoint() -> str | None:
    return (cloud_config("azure").get("endpoint_url") or os.environ.get("SKYBROKER_AZURE_ENDPOINT")
            or None)


def azure_subscription() -> str:
    sub = cloud_config("azure").get("subscription_id") or os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not sub:
        raise CredentialsError("Azure: no subscription id",
                               hint="set azure.subscription_id in config.yaml or AZURE_SUBSCRIPTION_ID")
    return str(sub)


class StaticTokenCredential:
    """A fixed bearer token (env SKYBROKER_AZURE_TOKEN): for private endpoints and tests."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        import time

        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


def azure_credential() -> Any:
    token = os.environ.get("SKYBROKER_AZURE_TOKEN")
    if token:
        return StaticTokenCredential(token)
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as e:
        raise missing_sdk("azure", e) from None
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def azure_client(kind: str) -> Any:
    """An azure-mgmt client: kind is 'compute', 'network' or 'resource'."""
    try:
        if kind == "compute":
            from azure.mgmt.compute import ComputeManagementClient as C
        elif kind == "network":
            from azure.mgmt.network import NetworkManagementClient as C
        else:
            try:  # azure-mgmt-resource >= 24 moved it into a subpackage
                from azure.mgmt.resource.resources import ResourceManagementClient as C
            except ImportError:
                from azure.mgmt.resource import ResourceManagementClient as C
    except ImportError as e:
        raise missing_sdk("azure", e) from None
    kwargs: dict[str, Any] = {}
    endpoint = azure_endpoint()
    if endpoint:
        kwargs["base_url"] = endpoint
        kwargs["credential_scopes"] = ["https://management.azure.com/.default"]
    ca = cloud_config("azure").get("ca_bundle") or os.environ.get("SKYBROKER_AZURE_CA_BUNDLE")
    if ca:
        kwargs["connection_verify"] = ca
    if os.environ.get("SKYBROKER_AZURE_POLLING_INTERVAL"):  # LRO poll period (tests: 0)
        kwargs["polling_interval"] = float(os.environ["SKYBROKER_AZURE_POLLING_INTERVAL"])
    if os.environ.get("SKYBROKER_AZURE_RETRY_BACKOFF"):  # azure-core's own retry backoff factor
        kwargs["retry_backoff_factor"] = float(os.environ["SKYBROKER_AZURE_RETRY_BACKOFF"])
    return C(azure_credential(), azure_subscription(), **kwargs)


# ---- reaching nodes ----


def _make_ssh_key(path: Any, pub: Any) -> None:
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    public = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp, tmp_pub = path.parent / f".{path.name}.{tag}", pub.parent / f".{pub.name}.{tag}"
    tmp.write_bytes(private)
    os.chmod(tmp, 0o600)
    tmp_pub.write_text(public.decode() + f" skybroker-{broker_id()}\n")
    os.replace(tmp, path)
    os.replace(tmp_pub, pub)


def ssh_identity() -> tuple[str, str]:
    """(private key path, public key line) of this broker's SSH key, made on first use.

    One ed25519 key per broker home: every SDK-cloud node gets its public half (key pair,
    metadata ssh-keys, osProfile), and the runtime connects with the private half.
    """
    keys = home() / "keys"
    path = keys / "sky-key"
    pub = keys / "sky-key.pub"
    if not (path.exists() and pub.exists()):
        keys.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(keys / ".lock", "a+") as lock:  # concurrent launches must agree on one key
            try:
                import fcntl

                fcntl.flock(lock, fcntl.LOCK_EX)
            except (ImportError, OSError):
                pass
            if not (path.exists() and pub.exists()):
                _make_ssh_key(path, pub)
    return str(path), pub.read_text().strip()


def apply_ssh_override(cloud: str, nodes: list[Any]) -> None:
    """Point nodes' SSH at `<cloud>.ssh_endpoint_override` (host:port, or a list per rank).

    For tests and for bastion/port-forward setups: the cloud's own IPs stay in
    `extra['cloud_external_ip']`.
    """
    override = cloud_config(cloud).get("ssh_endpoint_override") or os.environ.get(
        f"SKYBROKER_{cloud.upper()}_SSH_ENDPOINT")
    if not override:
        return
    endpoints = override if isinstance(override, list) else str(override).split(",")
    for node in nodes:
        ep = str(endpoints[min(node.rank, len(endpoints) - 1)]).strip()
        host, _, port = ep.rpartition(":") if ":" in ep else (ep, "", "22")
        node.extra["cloud_external_ip"] = node.external_ip
        node.external_ip = host
        node.ssh_port = int(port)


def finish_nodes(cloud: str, cluster_name: str, nodes: list[Any]) -> dict[str, Any]:
    """Apply `<cloud>.ssh_endpoint_override` and `<cloud>.node_root` to fresh nodes.

    Everything else the SSH runtime needs it derives itself (`runtime.cluster._reach`: this
    broker's key from `ssh_identity()`, host keys recorded per cluster; node roots under the
    SSH user's $HOME). `node_root` pins nodes' private directories (`<node_root>/<cluster>/
    <rank>`) instead, e.g. for tests whose "VM" is this machine. Returns provider_data
    entries (none today; the hook keeps the three provisioners in step).
    """
    apply_ssh_override(cloud, nodes)
    base = cloud_config(cloud).get("node_root")
    if base:
        for node in nodes:
            node.extra["root"] = f"{base}/{cluster_name}/{node.rank}"
            node.extra.setdefault("home", str(base))
    return {}

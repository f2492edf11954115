"""`sky check` and the launch filter, with credentials found (or not) by each SDK's discovery."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner
from stubs.aws_env import isolate_aws_env

from skybroker.clouds import check as chk


def isolate_all(monkeypatch, tmp_path):
    isolate_aws_env(monkeypatch, tmp_path, None)
    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG",
                "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_SUBSCRIPTION_ID",
                "IDENTITY_ENDPOINT", "MSI_ENDPOINT", "SKYBROKER_AZURE_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # no gcloud ADC
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure"))  # no az login
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # google.auth must not probe the metadata server
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")


def test_aws_env_credentials_are_found_and_missing_ones_say_what_to_fix(monkeypatch, tmp_path):
    isolate_all(monkeypatch, tmp_path)
    ok = chk.check_aws()
    assert ok.ok and "env" in ok.detail
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    bad = chk.check_aws()
    assert not bad.ok and "aws configure" in bad.detail


def test_aws_profile_from_shared_credentials_file(monkeypatch, tmp_path):
    isolate_all(monkeypatch, tmp_path)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (tmp_path / "creds").write_text("[default]\naws_access_key_id = A\naws_secret_access_key = B\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "creds"))
    assert chk.check_aws().ok


def test_gcp_and_azure_without_credentials_are_disabled_with_a_fix(monkeypatch, tmp_path):
    isolate_all(monkeypatch, tmp_path)
    g = chk.check_gcp()
    assert not g.ok and ("gcloud auth application-default login" in g.detail or "pip install" in g.detail)
    a = chk.check_azure()
    assert not a.ok and ("az login" in a.detail or "pip install" in a.detail)


def test_gcp_service_account_file_and_azure_service_principal(monkeypatch, tmp_path):
    isolate_all(monkeypatch, tmp_path)
    sa = {"type": "service_account", "project_id": "proj-1", "private_key_id": "k",
          "private_key": _pem(), "client_email": "x@proj-1.iam.gserviceaccount.com",
          "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}
    (tmp_path / "sa.json").write_text(json.dumps(sa))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "sa.json"))
    g = chk.check_gcp()
    assert g.ok and "proj-1" in g.detail, g.detail
    for k, v in {"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t", "AZURE_CLIENT_SECRET": "s"}.items():
        monkeypatch.setenv(k, v)
    a = chk.check_azure()
    assert not a.ok and "subscription" in a.detail
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub-1")
    assert chk.check_azure().ok


def test_launch_filter_uses_the_cached_check(monkeypatch, tmp_path, sky_home):
    isolate_all(monkeypatch, tmp_path)
    assert chk.enabled_clouds_for_launch() == ["aws", "local"]
    cached = json.loads((sky_home / chk.CACHE_FILE).read_text())["clouds"]
    assert cached["aws"]["ok"] and not cached["gcp"]["ok"]
    # the cache is what launch uses, until `sky check` runs again
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    assert chk.enabled_clouds_for_launch() == ["aws", "local"]
    chk.check(["aws"])
    assert chk.enabled_clouds_for_launch() == ["local"]
    # a cached failure is re-checked after a few minutes: the fix is picked up by itself
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "again")
    real = chk.time.time
    monkeypatch.setattr(chk.time, "time", lambda: real() + chk.TRUST_FAILED_S + 1)
    assert chk.enabled_clouds_for_launch() == ["aws", "local"]


def test_sky_check_cli_prints_one_line_per_cloud(monkeypatch, tmp_path):
    isolate_all(monkeypatch, tmp_path)
    from skybroker.cli import cli

    res = CliRunner().invoke(cli, ["check"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip().startswith(("AWS", "GCP", "AZURE"))]
    assert len(lines) == 3 and "enabled" in lines[0]
    res = CliRunner().invoke(cli, ["check", "awz"])
    assert res.exit_code != 0 and "aws" in str(res.exception or res.output)


def test_sdk_missing_says_which_extra_to_install(monkeypatch, tmp_path):
    isolate_all(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError
    r = chk.check_aws()
    assert not r.ok and "pip install 'skybroker[aws]'" in r.detail


def test_importing_the_cli_loads_no_cloud_sdk():
    code = ("import sys, skybroker.cli, skybroker.clouds.registry, skybroker.core.failover, "
            "skybroker.clouds.check, skybroker.clouds.clients\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'google', 'azure')]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
